"""Issue #8, attack 3: dataset names, CSV headers and row text that try to print workflow
commands (or terminal escapes) into the action's log. Each test builds the hostile repository,
runs the action's entrypoint as GitHub does, and checks what the GitHub server received, what
was printed, and the exit code."""

from __future__ import annotations

import json

import yaml

from action_harness import CONFIG, EVAL, REPO, dataset_repo, leaks, merge_checkout, pr_payload, push_eval, run_action
from conftest import git_commit
from printed import assert_inert, assert_no_controls, commands

SPOOF = "tr\n::error file=README.md,line=1::Spoofed\n::stop-commands::x"
ANSI = "\x1b[2J\x1b[31mRED\x1b]8;;https://evil.example\x07link\x1b]8;;\x07"
BIDI_TEXT = "access \u202egnp.exe\u202c \u2066isolated\u2069"


def _pull_request(tmp_path, github, config: str, files: dict[str, str] | None = None,
                  rows=None):
    """A repository whose base commit has ``config`` (and ``files``); the PR adds ``rows``."""
    ws, _ = dataset_repo(tmp_path / "ws")
    (ws / ".eval-firewall.yml").write_text(config, encoding="utf-8")
    for name, text in (files or {}).items():
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_bytes(text.encode("utf-8"))
    base = git_commit(ws, "hostile base")
    head = push_eval(ws, rows if rows is not None else leaks(3), "add eval rows")
    github.add_pull(REPO, 7, head, base)
    merge = merge_checkout(ws, base, head)
    return ws, head, merge, pr_payload("opened", number=7, head=head, base=base)


def _posted(github) -> dict[str, str]:
    texts = {f"comment {c['id']}": c["body"] for c in github.comments_on(REPO, 7)}
    for run in github.state.check_runs.values():
        texts[f"check {run['id']} title"] = run["output"]["title"]
        texts[f"check {run['id']} summary"] = run["output"]["summary"]
        texts[f"check {run['id']} annotations"] = json.dumps(run["_annotations"],
                                                             ensure_ascii=False)
    return texts


def test_a_dataset_name_cannot_print_workflow_commands(tmp_path, github):
    config = CONFIG.replace("- name: train", f"- name: {json.dumps(SPOOF)}", 1)
    assert yaml.safe_load(config)["datasets"][0]["name"] == SPOOF
    ws, _, merge, payload = _pull_request(tmp_path, github, config)
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)

    assert run.code == 1, run.stderr                       # the leak is still found
    assert_inert(run)
    assert commands(run.stdout) == []                      # nothing of ours to say either
    shown = [line for line in run.stderr.splitlines() if "Spoofed" in line]
    assert shown and all(line.startswith("eval-firewall: ") for line in shown)
    assert "tr\\n::error file=README.md,line=1::Spoofed\\n::stop-commands::x" in shown[0]
    # The outputs file was not split by the name either.
    assert run.outputs["status"] == "fail" and run.outputs["findings"] == "1"
    # The server got the name as inert text, on one line.
    (comment,) = github.comments_on(REPO, 7)
    assert "Spoofed" in comment["body"]
    assert not any(line.lstrip().startswith("::") for line in comment["body"].splitlines())
    for where, text in _posted(github).items():
        assert "\n::error" not in text and "\n::stop-commands" not in text, where


def test_a_carriage_return_in_a_csv_header_cannot_print_workflow_commands(tmp_path, github):
    header = '"question\r::error file=README.md,line=1::Spoofed CSV\r::add-mask::x",answer\n'
    csv = header + "What is 2 + 2?,4\n"
    config = CONFIG.replace('paths: ["data/eval/*.jsonl"]', 'paths: ["data/eval/*.csv"]')
    ws, head, merge, payload = _pull_request(tmp_path, github, config,
                                             {"data/eval/eval.csv": csv}, rows=[])
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)

    assert run.code == 2, run.stderr                       # the column is missing: bad input
    assert_inert(run)
    (error,) = [line for line in run.stderr.splitlines() if "error:" in line]
    assert error.startswith("eval-firewall: error: data/eval/eval.csv:1: ")
    # A column name that is not short and printable is never quoted: only counted.
    assert "(2 columns)" in error and "Spoofed" not in error
    (ours,) = commands(run.stdout)                          # our one ::error
    assert ours.startswith("::error::eval-firewall: ") and "Spoofed" not in ours
    assert "\r" not in run.stdout and "\r" not in run.stderr
    # The check run says the audit could not run, without the header.
    (check,) = github.state.check_runs.values()
    assert (check["conclusion"], check["head_sha"]) == ("failure", head)
    summary = check["output"]["summary"]
    assert "column is missing" in summary and "Spoofed" not in summary and "\r" not in summary
    assert not github.comments_on(REPO, 7)


def test_ansi_and_bidi_controls_are_shown_not_obeyed(tmp_path, github):
    name = f"ev{ANSI}al{BIDI_TEXT}"
    config = CONFIG.replace("- name: eval", f"- name: {json.dumps(name)}", 1)
    rows = leaks(2)
    rows.append({"question": f"Trojan {BIDI_TEXT} {ANSI} row", "answer": "1"})
    rows.append(dict(rows[-1]))                            # an eval duplicate: a finding
    ws, _, merge, payload = _pull_request(tmp_path, github, config, rows=rows)
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)

    assert run.code == 1, run.stderr
    assert_inert(run)
    assert "\\x1b[31mRED" in run.stderr and "\\u202e" in run.stderr   # visible, not obeyed
    posted = _posted(github)
    assert any("Trojan" in text for text in posted.values())
    for where, text in posted.items():
        assert_no_controls(where, text)
        assert "https://evil" not in text, where
    assert_no_controls("job summary", run.summary)
    for name in ("report.json", "report.sarif", "report.md"):
        text = (ws / "eval-firewall-report" / name).read_text(encoding="utf-8")
        assert_no_controls(name, text)
    # JSON keeps the data exactly: the escapes decode to the original characters.
    report = json.loads((ws / "eval-firewall-report/report.json").read_text(encoding="utf-8"))
    assert any(f["text"] and BIDI_TEXT in f["text"] for f in report["findings"])
    assert EVAL in {f["path"] for f in report["findings"]}
