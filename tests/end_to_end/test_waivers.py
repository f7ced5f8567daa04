"""Waivers: the file and the config key, fingerprints and short ids, expiry, stale waivers,
`eval-firewall waive`, SARIF suppressions, and waivers end to end in the GitHub Action."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from action_harness import (
    EVAL,
    REPO,
    TRAIN_ROWS,
    leak_lines,
    leaks,
    merge_checkout,
    open_pr,
    pr_payload,
    review_payload,
    run_action,
)
from conftest import BASIC_CONFIG, git, git_commit, gsm8k, write_jsonl
from eval_firewall.cli import main
from eval_firewall.config import load_config
from eval_firewall.engine import run_audits
from eval_firewall.errors import UserError
from eval_firewall.findings import Finding, Severity
from eval_firewall.policy import waivers

TRAIN = gsm8k("train", 40)
EVAL_ROWS = gsm8k("test", 12)
CONFIG = BASIC_CONFIG + "  provenance: {missing: off}\n"
FILE = waivers.WAIVERS_FILE
TODAY = dt.date(2026, 6, 1)


def leaky(*indices: int) -> list[dict]:
    """The clean eval rows, then exact copies of the given train rows."""
    return [dict(r) for r in EVAL_ROWS] + [dict(TRAIN[i]) for i in indices]


def make_repo(path: Path, eval_rows: list[dict], config: str = CONFIG) -> Path:
    write_jsonl(path / "data/train/train.jsonl", TRAIN)
    write_jsonl(path / "data/eval/eval.jsonl", eval_rows)
    (path / ".eval-firewall.yml").write_text(config, encoding="utf-8")
    return path


def cli(path: Path, command: str, *args: str):
    """Run ``eval-firewall COMMAND --config path/.eval-firewall.yml ARGS``."""
    return CliRunner().invoke(main, [command, "--config", str(path / ".eval-firewall.yml"),
                                     *args], catch_exceptions=False)


def audit_json(path: Path, *extra: str) -> tuple[int, dict]:
    out = path / "report.json"
    done = cli(path, "audit", "--format", "json", "-o", str(out), "--no-cache", "-q", *extra)
    assert done.exit_code in (0, 1), done.output
    return done.exit_code, json.loads(out.read_text(encoding="utf-8"))


def leak_finding(report: dict) -> dict:
    [found] = [f for f in report["findings"] if f["rule"] == "exact-duplicate"]
    return found


# --- parsing -------------------------------------------------------------------------------------

ENTRY = "- fingerprint: {fp}\n  reason: known, accepted\n  approved_by: alice\n"


@pytest.mark.parametrize("text, line, field, says", [
    ("fingerprint: abcdef12\n", 1, None, "a YAML list"),
    ("- fingerprint: abcdef12\n  approved_by: alice\n", 1, "[0].reason", "required key"),
    ("# c\n- fingerprint: abcdef12\n  reason: x\n  approved_by: a\n"
     "- fingerprint: xyz\n  reason: x\n  approved_by: a\n", 5, "[1].fingerprint", "hex"),
    ("- fingerprint: abcdef12\n  reason: x\n  approved_by: a\n  expires: soon\n", 4,
     "[0].expires", "date"),
    ("- fingerprint: abcdef12\n  reason: x\n  approved_by: a\n  by: b\n", 4, "[0].by",
     "unknown key"),
    ("- fingerprint: abcdef12\n  reason: '  '\n  approved_by: a\n", 2, "[0].reason",
     "at least 1"),
    ("- fingerprint: abcdef12\n  reason: x\n  approved_by: a\n"
     "- fingerprint: ABCDEF1234\n  reason: y\n  approved_by: b\n", 4, "fingerprint",
     "repeats the one at w.yml:1"),
    ("- [unclosed\n", 2, None, "invalid YAML"),
])
def test_bad_waiver_files_are_one_line_errors_naming_line_and_field(text, line, field, says):
    with pytest.raises(UserError) as err:
        waivers.parse_waivers(text, source="w.yml")
    assert err.value.path == "w.yml" and err.value.line == line
    assert err.value.field == field
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_waiver_file_of_comments_only_waives_nothing():
    assert waivers.parse_waivers("# nothing yet\n", source="w.yml") == []
    [item] = waivers.parse_waivers("# x\n" + ENTRY.format(fp="ABCDEF12"), source="w.yml")
    assert (item.entry.fingerprint, item.line, item.entry.expires) == ("abcdef12", 2, None)
    # YAML reads an unquoted 01234567 as an (octal) number: the text as written is kept
    [item] = waivers.parse_waivers(ENTRY.format(fp="01234567"), source="w.yml")
    assert item.entry.fingerprint == "01234567"


def test_short_ids_resolve_and_an_ambiguous_one_is_an_error():
    known = {"ab" * 16, "abab0000" + "0" * 24, "cd" * 16}
    assert waivers.resolve("cdcdcdcd", known) == "cd" * 16
    assert waivers.resolve("cd" * 16, known) == "cd" * 16
    assert waivers.resolve("eeeeeeee", known) is None
    with pytest.raises(UserError, match="matches 2 findings"):
        waivers.resolve("abab", known)


def _finding(text: str, rule: str = "exact-duplicate") -> Finding:
    return Finding("overlap", rule, Severity.ERROR, "m", dataset="eval", path="e.jsonl", line=1,
                   row_id="1", text=text)


def test_apply_waives_by_fingerprint_and_reports_expired_and_unmatched_waivers():
    a, b = _finding("first question"), _finding("second question")
    entries = waivers.parse_waivers(
        ENTRY.format(fp=a.short_id)
        + ENTRY.format(fp=b.fingerprint) + "  expires: 2026-05-31\n"
        + ENTRY.format(fp="0123456789abcdef"), source=FILE)
    applied = waivers.apply([a, b], entries, today=TODAY, at_base={a.short_id})
    assert set(applied.waivers) == {a.fingerprint}          # b's waiver expired yesterday
    assert applied.waivers[a.fingerprint].reason == "known, accepted"
    assert applied.waivers[a.fingerprint].new is False      # it was there at the base
    assert [(f.rule, f.line, f.severity) for f in applied.stale] == [
        ("stale-waiver", 4, Severity.WARNING), ("stale-waiver", 8, Severity.WARNING)]
    assert "expired on 2026-05-31" in applied.stale[0].message
    assert "matches no finding" in applied.stale[1].message
    assert applied.new == 2 and all(f.new for f in applied.stale)
    # the last day of a waiver still counts
    assert b.fingerprint in waivers.apply([b], entries[1:2], today=dt.date(2026, 5, 31)).waivers


# --- the audit and the waive command -------------------------------------------------------------

def test_waive_a_short_id_from_the_report_then_the_audit_passes(tmp_path):
    repo = make_repo(tmp_path, leaky(7))
    code, report = audit_json(repo)
    assert code == 1
    leak = leak_finding(report)
    assert len(leak["fingerprint"]) == 32 and leak["waived"] is None
    (repo / FILE).write_text("# accepted findings, reviewed in pull requests\n", "utf-8")

    done = cli(repo, "waive", leak["fingerprint"][:8], "--reason", "kept on purpose: a canary",
               "--by", "alice", "--expires", "2999-12-31", "--report", str(repo / "report.json"))
    assert done.exit_code == 0, done.output
    assert f"waived {leak['fingerprint']} in {FILE}" in done.output
    text = (repo / FILE).read_text("utf-8")
    assert text.startswith("# accepted findings, reviewed in pull requests\n")   # appended
    assert f'- fingerprint: "{leak["fingerprint"]}"\n' in text

    code, report = audit_json(repo)
    assert code == 0 and report["status"] == "pass"
    waived = leak_finding(report)["waived"]
    assert waived == {"fingerprint": leak["fingerprint"], "reason": "kept on purpose: a canary",
                      "approved_by": "alice", "expires": "2999-12-31", "new": False,
                      "reviewer": None}
    sarif = json.loads(cli(repo, "audit", "--format", "sarif", "--no-cache", "-q").output)
    schema = json.loads((Path(__file__).parents[1] / "data/sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    [result] = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "exact-duplicate"]
    assert result["suppressions"][0]["kind"] == "external"
    assert result["suppressions"][0]["justification"] == "kept on purpose: a canary"
    assert result["partialFingerprints"]["evalFirewallFinding/v2"] == leak["fingerprint"]

    again = cli(repo, "waive", leak["fingerprint"], "--reason", "x", "--by", "bob")
    assert again.exit_code == 2 and f"already waived at {FILE}:2" in again.output
    assert (repo / FILE).read_text("utf-8") == text          # refused: the file is untouched


def test_waive_resolves_a_short_id_by_running_the_audit_and_rejects_unknown_ones(tmp_path):
    repo = make_repo(tmp_path, leaky(3))
    _, report = audit_json(repo)
    leak = leak_finding(report)
    missing = cli(repo, "waive", "deadbeef", "--reason", "x", "--by", "bob")
    assert missing.exit_code == 2 and "no finding has the short id 'deadbeef'" in missing.output
    bad = cli(repo, "waive", "not-hex!", "--reason", "x", "--by", "bob")
    assert bad.exit_code == 2 and "is not a fingerprint" in bad.output
    assert not (repo / FILE).exists()
    done = cli(repo, "waive", leak["fingerprint"][:8],
               "--reason", "a \"quoted\" reason: with colons", "--by", "bob")
    assert done.exit_code == 0, done.output
    [item] = waivers.parse_waivers((repo / FILE).read_text("utf-8"), source=FILE)
    assert item.entry.fingerprint == leak["fingerprint"]
    assert item.entry.reason == 'a "quoted" reason: with colons' and item.entry.expires is None


def test_expired_and_unmatched_waivers_warn_and_severity_can_raise_them(tmp_path):
    repo = make_repo(tmp_path, leaky(7))
    _, report = audit_json(repo)
    leak = leak_finding(report)
    (repo / FILE).write_text(
        ENTRY.format(fp=leak["fingerprint"]) + "  expires: 2001-01-01\n", "utf-8")
    code, report = audit_json(repo)
    assert code == 1 and leak_finding(report)["waived"] is None   # expired: it counts again
    [stale] = [f for f in report["findings"] if f["rule"] == "stale-waiver"]
    assert (stale["severity"], stale["path"], stale["line"]) == ("warning", FILE, 1)

    # The leak is fixed; its waiver (in the config's waivers: key) now matches nothing.
    config = CONFIG + "severity: {stale-waiver: error}\nwaivers:\n" + "".join(
        "  " + line + "\n" for line in ENTRY.format(fp=leak["fingerprint"]).splitlines())
    make_repo(tmp_path, leaky(), config)
    (repo / FILE).unlink()
    code, report = audit_json(repo)
    [stale] = [f for f in report["findings"] if f["rule"] == "stale-waiver"]
    assert code == 1 and stale["severity"] == "error" and "matches no finding" in stale["message"]


def test_the_config_waivers_key_is_validated_with_its_line(tmp_path):
    config = CONFIG + "waivers:\n  - fingerprint: abcdef12\n    approved_by: bob\n"
    make_repo(tmp_path, leaky(), config)
    with pytest.raises(UserError) as err:
        load_config(tmp_path / ".eval-firewall.yml")
    assert (err.value.line, err.value.field) == (18, "waivers[0].reason")


def test_a_fingerprint_shorter_than_a_short_id_is_refused_with_its_line(tmp_path):
    repo = make_repo(tmp_path, leaky(7))
    report = run_audits(load_config(repo / ".eval-firewall.yml"))
    prefix = report.findings[0].fingerprint[:6]
    (repo / FILE).write_text("# reviewed\n" + ENTRY.format(fp=prefix), "utf-8")
    with pytest.raises(UserError) as err:
        run_audits(load_config(repo / ".eval-firewall.yml"))
    assert (err.value.path, err.value.line, err.value.field) == (FILE, 2, "[0].fingerprint")


# --- the GitHub Action ---------------------------------------------------------------------------

def test_a_pull_request_that_waives_its_leak_fails_until_a_maintainer_approves_it(tmp_path,
                                                                                github):
    ws, base, head, merge, payload = open_pr(tmp_path, github, leaks(0))
    first = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert first.code == 1, first.stderr
    report = json.loads((ws / first.outputs["report-path"]).read_text("utf-8"))
    leak = leak_finding(report)
    assert leak["line"] == leak_lines(1)[0] and leak["new"] is True

    # The author waives it on the pull request branch, as the comment's short id allows.
    git(ws, "checkout", "-q", "pr")
    done = cli(ws, "waive", leak["fingerprint"][:8], "--reason", "canary row, kept on purpose",
               "--by", "maintainer", "--report", str(ws / first.outputs["report-path"]))
    assert done.exit_code == 0, done.output
    head2 = git_commit(ws, "waive the canary")
    github.add_pull(REPO, 7, head2, base)
    merge2 = merge_checkout(ws, base, head2)
    second = run_action(tmp_path, ws, "pull_request",
                        pr_payload("synchronize", number=7, head=head2, base=base, before=head),
                        github, sha=merge2)
    # A waiver the pull request adds is a loosening of the gate: pending, not applied.
    assert second.code == 1, second.stderr
    report = json.loads((ws / second.outputs["report-path"]).read_text("utf-8"))
    assert leak_finding(report)["waived"] is None
    [pending] = [c for c in report["policy"] if c["status"] == "pending"]
    assert pending["key"] == f"waivers[{leak['fingerprint']}]" and pending["path"] == FILE

    # A maintainer approves the head commit: the pull_request_review run applies the waiver.
    review = github.review(REPO, 7, "maintainer", "APPROVE")
    second = run_action(tmp_path, ws, "pull_request_review",
                        review_payload("submitted", number=7, head=head2, base=base,
                                       reviewer="maintainer", review_id=review["id"]),
                        github, sha=merge2)
    assert second.code == 0, second.stderr
    assert second.outputs["status"] == "pass"
    run = list(github.state.check_runs.values())[-1]
    # neutral: it passes, with findings (the waived one), none failing
    assert (run["head_sha"], run["conclusion"]) == (head2, "neutral")
    report = json.loads((ws / second.outputs["report-path"]).read_text("utf-8"))
    waived = leak_finding(report)["waived"]
    assert waived["reason"] == "canary row, kept on purpose" and waived["new"] is True
    assert waived["reviewer"] == "maintainer"          # the approving review's login
    assert report["summary"]["failing"] == 0
    waivers_audit = next(a for a in report["audits"] if a["audit"] == "waivers")
    stats = {s["label"]: s["value"] for s in waivers_audit["stats"]}
    assert stats["waivers added by this change"] == 1 and stats["findings waived"] == 1
    assert leak["text"] == TRAIN_ROWS[0]["question"] and leak["path"] == EVAL
