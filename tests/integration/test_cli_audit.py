"""`eval-firewall audit`: exit codes, options, streams, and every bad-input path.

Driven through click's CliRunner and, for the installed command, a real subprocess.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_harness import CACHE, CLEAN_CONFIG, EVAL, TRAIN, dup_eval, leaky_eval, one_error_line, run
from click.testing import CliRunner

from conftest import BASIC_CONFIG, git_init, write_jsonl
from eval_firewall.cli import main
from eval_firewall.cli.audit import audit as audit_command

# --- exit codes and streams -------------------------------------------------------------

def test_clean_dataset_passes_with_exit_0(repo):
    root = repo(TRAIN, EVAL, CLEAN_CONFIG)
    result = run(root)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("**✅ No problems found.**\n\n")
    # Progress goes to stderr, never into the report.
    assert "eval-firewall: read train (40 rows) in " in result.stderr
    assert "eval-firewall: read eval (12 rows) in " in result.stderr
    assert "read train" not in result.stdout


def test_leak_fails_with_exit_1_and_points_at_the_row(repo):
    root = repo(TRAIN, leaky_eval())
    result = run(root)
    assert result.exit_code == 1
    assert result.stdout.startswith("**❌ Found 1 leaked eval row (exact copy).")
    assert "| data/eval/eval.jsonl:5 | Exact copy of a train row · `" in result.stdout
    assert " ↔ data/train/train.jsonl:8 (same text) |" in result.stdout


@pytest.mark.parametrize("cache", [[], ["--no-cache"]])
def test_an_unpaired_surrogate_escape_is_an_invalid_row_not_a_crash(repo, cache):
    # Before: a traceback from pyarrow (row cache) or the bulk normalization (no cache).
    rows = [*EVAL[:3], {**EVAL[3], "question": "How many \ud800 apples?"}]
    root = repo(TRAIN, rows, CLEAN_CONFIG)
    result = run(root, "--format", "text", *cache)
    assert result.exit_code == 1, result.stderr
    assert "data/eval/eval.jsonl:4  invalid-row  field 'question': holds an unpaired " \
           "surrogate escape" in result.stdout
    assert "Traceback" not in result.stderr


def test_quiet_means_nothing_on_stderr(repo):
    root = repo(TRAIN, leaky_eval())
    result = run(root, "-q")
    assert result.exit_code == 1 and result.stderr == ""


@pytest.mark.parametrize("fmt", ["json", "sarif", "markdown"])
def test_format_option(repo, fmt: str):
    root = repo(TRAIN, leaky_eval())
    result = run(root, "--format", fmt, "-q")
    assert result.exit_code == 1
    if fmt == "json":
        data = json.loads(result.stdout)
        assert data["status"] == "fail"
        assert [f["rule"] for f in data["findings"] if f["severity"] == "error"] == \
            ["exact-duplicate"]
    elif fmt == "sarif":
        data = json.loads(result.stdout)
        assert data["version"] == "2.1.0"
        assert any(r["ruleId"] == "exact-duplicate" for r in data["runs"][0]["results"])
    else:
        assert result.stdout.startswith("**❌ Found ")


def test_output_writes_the_file_and_nothing_to_stdout(repo, tmp_path: Path):
    root = repo(TRAIN, leaky_eval())
    out = tmp_path / "reports" / "nested" / "report.json"
    result = run(root, "--format", "json", "--output", str(out), "-q")
    assert result.exit_code == 1
    assert result.stdout == ""
    written = json.loads(out.read_text(encoding="utf-8"))
    printed = json.loads(run(root, "--format", "json", "-q").stdout)
    assert written["findings"] == printed["findings"]


def test_output_that_cannot_be_written_is_a_one_line_error(repo, tmp_path: Path):
    root = repo(TRAIN, EVAL)
    (tmp_path / "file.txt").write_text("not a directory", encoding="utf-8")
    target = tmp_path / "file.txt" / "report.md"
    result = run(root, "-q", "--output", str(target))
    one_error_line(result, f"{target}: cannot write the report: Not a directory")
    # A directory given as the output file is refused by the option itself.
    result = run(root, "-q", "--output", str(tmp_path))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == \
        f"Error: Invalid value for '--output' / '-o': File '{tmp_path}' is a directory."


# --- fail levels and severities ---------------------------------------------------------

@pytest.mark.parametrize("fail_on, rows, code", [
    ("never", leaky_eval, 0),
    ("error", leaky_eval, 1),
    ("error", dup_eval, 0),      # only a warning
    ("warning", dup_eval, 1),
    ("notice", dup_eval, 1),
])
def test_fail_on_option(repo, fail_on: str, rows, code: int):
    root = repo(TRAIN, rows(), CLEAN_CONFIG)
    result = run(root, "--fail-on", fail_on, "--format", "json", "-q")
    assert result.exit_code == code
    data = json.loads(result.stdout)
    assert data["fail_on"] == fail_on
    assert data["status"] == ("pass" if code == 0 else "fail")


def test_fail_on_notice_fails_on_a_notice_only(repo):
    config = CLEAN_CONFIG.replace("{missing: off}", "{missing: notice}")
    root = repo(TRAIN, EVAL, config)
    assert run(root, "-q").exit_code == 0
    assert run(root, "-q", "--fail-on", "warning").exit_code == 0
    assert run(root, "-q", "--fail-on", "notice").exit_code == 1


def test_fail_on_from_the_config_and_the_option_overrides_it(repo):
    root = repo(TRAIN, leaky_eval(), BASIC_CONFIG + "fail_on: never\n")
    assert run(root, "-q").exit_code == 0
    assert run(root, "-q", "--fail-on", "error").exit_code == 1
    root = repo(TRAIN, dup_eval(), CLEAN_CONFIG + "fail_on: warning\n")
    assert run(root, "-q").exit_code == 1
    assert run(root, "-q", "--fail-on", "error").exit_code == 0


def test_severity_overrides_in_the_config(repo):
    demoted = CLEAN_CONFIG + "severity:\n  exact-duplicate: warning\n"
    root = repo(TRAIN, leaky_eval(), demoted)
    result = run(root, "-q", "--format", "json")
    assert result.exit_code == 0
    [finding] = json.loads(result.stdout)["findings"]
    assert (finding["rule"], finding["severity"]) == ("exact-duplicate", "warning")
    root = repo(TRAIN, leaky_eval(), CLEAN_CONFIG + "severity:\n  exact-duplicate: off\n")
    result = run(root, "-q", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["findings"] == []
    promoted = CLEAN_CONFIG + "severity:\n  eval-duplicate: error\n"
    root = repo(TRAIN, dup_eval(), promoted)
    assert run(root, "-q").exit_code == 1


# --- finding the config -----------------------------------------------------------------

def test_config_is_found_from_a_subdirectory_of_the_repository(repo):
    root = git_init(repo(TRAIN, leaky_eval()))
    sub = root / "data" / "eval"
    result = run(root, "-q", config=False, cwd=sub)
    assert result.exit_code == 1
    assert "data/eval/eval.jsonl:5" in result.stdout


def test_config_option_from_another_directory(repo, tmp_path: Path):
    root = repo(TRAIN, leaky_eval())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run(root, "-q", cwd=elsewhere)
    assert result.exit_code == 1
    assert "| data/eval/eval.jsonl:5 |" in result.stdout  # paths relative to the config


# --- bad input: one line, exit 2 --------------------------------------------------------

def test_missing_config(tmp_path: Path):
    git_init(tmp_path)
    result = run(tmp_path, "-q", config=False)
    one_error_line(result, f"no .eval-firewall.yml found in {tmp_path.resolve()} or the "
                           "repository root above it (pass --config FILE)")
    result = run(tmp_path, "-q", "--config", "nope.yml", config=False)
    one_error_line(result, "nope.yml: config file not found")


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.replace("    label: answer\n  - name: eval",
                         "    label: answer\n    colour: red\n  - name: eval"),
     ".eval-firewall.yml:7: field 'datasets[0].colour': unknown key"),
    (lambda c: c + "fail_on: sometimes\n",
     ".eval-firewall.yml:16: field 'fail_on': Input should be 'error', 'warning', 'notice' or "
     "'never' (got 'sometimes')"),
    (lambda c: c.replace("semantic: {enabled: false}", "semantic: {enabled: maybe}"),
     ".eval-firewall.yml:14: field 'audits.overlap.semantic.enabled': Input should be a valid "
     "boolean, unable to interpret input (got 'maybe')"),
    (lambda c: c.replace('["data/eval/*.jsonl"]', '["data/evals/*.jsonl"]'),
     ".eval-firewall.yml:9: field 'datasets[1].paths': glob 'data/evals/*.jsonl' matches no "
     "file"),
    (lambda c: c + "audits: [\n",
     ".eval-firewall.yml:17: invalid YAML: expected the node content, but found '<stream end>'"),
    (lambda c: c + "severity:\n  exact-dupe: off\n",
     ".eval-firewall.yml:17: field 'severity.exact-dupe': unknown rule "
     "(did you mean 'exact-duplicate'?)"),
    (lambda c: c.replace("    label: answer\n  - name: eval",
                         "    label: answer\n    format: xml\n  - name: eval"),
     ".eval-firewall.yml:7: field 'datasets[0].format': Input should be 'jsonl', 'json', 'csv', "
     "'tsv' or 'parquet' (got 'xml')"),
])
def test_config_errors(repo, edit, message: str):
    root = repo(TRAIN, EVAL, edit(BASIC_CONFIG))
    one_error_line(run(root, "-q"), message)


def test_unknown_report_format_is_a_usage_error(repo):
    root = repo(TRAIN, EVAL)
    result = run(root, "--format", "xml")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == \
        "Error: Invalid value for '--format': 'xml' is not one of 'markdown', 'json', 'sarif', 'text'."


def test_unknown_option_is_a_usage_error(repo):
    result = run(repo(TRAIN, EVAL), "--fail-on", "sometimes")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == ("Error: Invalid value for '--fail-on': "
                                              "'sometimes' is not one of 'error', 'warning', "
                                              "'notice', 'never'.")


def test_git_lfs_pointer(repo):
    root = repo(TRAIN, EVAL)
    (root / "data/eval/eval.jsonl").write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 12345\n", encoding="utf-8")
    one_error_line(run(root, "-q"), (
        "data/eval/eval.jsonl:1: this is a Git LFS pointer file, not the data it points to "
        "(fetch the data with 'git lfs pull' (in GitHub Actions: actions/checkout with "
        "'lfs: true'))"))


def test_non_utf8_file(repo):
    root = repo(TRAIN, EVAL)
    path = root / "data/eval/eval.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = json.dumps({"question": "Caf\u00e9 au lait?"}).encode("latin-1") \
        .replace(b"\\u00e9", b"\xe9") + b"\n"
    path.write_bytes(b"".join(lines))
    one_error_line(run(root, "-q"), "data/eval/eval.jsonl:3: not UTF-8 text: byte 0xe9 at "
                                    "column 18 (save the file as UTF-8)")


def test_csv_missing_the_text_column(repo):
    root = repo(TRAIN, EVAL, BASIC_CONFIG.replace("data/eval/*.jsonl", "data/eval/*.csv"))
    with open(root / "data/eval/eval.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", "answer"])
        w.writerows([[r["question"], r["answer"]] for r in EVAL])
    one_error_line(run(root, "-q"), "data/eval/eval.csv:1: field 'question': column is missing "
                                    "from the header (columns: prompt, answer)")


def test_unknown_data_file_extension(repo):
    root = repo(TRAIN, EVAL, BASIC_CONFIG.replace("data/eval/*.jsonl", "data/eval/*"))
    (root / "data/eval/notes.txt").write_text("hello\n", encoding="utf-8")
    one_error_line(run(root, "-q"), (
        "data/eval/notes.txt: cannot tell the file format from its name (use .jsonl, .jsonl.gz, "
        ".json, .csv, .tsv or .parquet, or set 'format' on the dataset in the config)"))


def test_errors_without_quiet_end_with_the_one_line_and_no_traceback(repo):
    root = repo(TRAIN, EVAL)
    (root / "data/eval/eval.jsonl").write_bytes(b'{"question": "\xff"}\n')
    result = run(root)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith(
        "eval-firewall: error: data/eval/eval.jsonl:1:")
    assert "Traceback" not in result.stderr


# --- bad rows: findings, not crashes ----------------------------------------------------

def test_bad_rows_become_invalid_row_findings(repo):
    root = repo(TRAIN, EVAL)
    path = root / "data/eval/eval.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = '{"question": "What is 2 + 2?", "answer": "4"'          # invalid JSON
    lines[4] = json.dumps({"answer": "7"})                              # text field missing
    lines[7] = json.dumps({"question": 12, "answer": "12"})             # wrong type
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run(root, "-q", "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    invalid = [(f["path"], f["line"], f["message"]) for f in data["findings"]
               if f["rule"] == "invalid-row"]
    assert invalid == [
        ("data/eval/eval.jsonl", 2, "invalid JSON: Expecting ',' delimiter (column 45)"),
        ("data/eval/eval.jsonl", 5, "field 'question': text field is missing"),
        ("data/eval/eval.jsonl", 8, "field 'question': text field must be a string, got int"),
    ]
    ev = next(d for d in data["datasets"] if d["name"] == "eval")
    assert (ev["rows"], ev["invalid_rows"]) == (9, 3)  # 12 lines: none dropped
    markdown = run(root, "-q").stdout
    assert "| data/eval/eval.jsonl:5 | field 'question': text field is missing · `" in markdown
    assert markdown.startswith("**❌ Found 3 unreadable rows.")


# --- the user's data is never modified --------------------------------------------------

def tree_digest(root: Path, skip: str = CACHE) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and skip not in p.relative_to(root).parts}


def test_the_data_is_never_modified(tmp_path: Path):
    (tmp_path / "repo").mkdir()
    root = git_init(tmp_path / "repo")
    write_jsonl(root / "data/train/train.jsonl", TRAIN)
    (root / "data/train/more.jsonl.gz").write_bytes(
        gzip.compress("".join(json.dumps(r) + "\n" for r in TRAIN[:5]).encode()))
    (root / "data/eval").mkdir(parents=True)
    pq.write_table(pa.table({"question": [r["question"] for r in EVAL[:6]],
                             "answer": [r["answer"] for r in EVAL[:6]]}),
                   root / "data/eval/a.parquet")
    with open(root / "data/eval/b.csv", "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["question", "answer"]] +
                                 [[TRAIN[3]["question"], r["answer"]] for r in EVAL[6:]])
    (root / "data/eval/README.md").write_text("---\nannotations_creators: [machine-generated]\n"
                                              "---\n", encoding="utf-8")
    (root / ".eval-firewall.yml").write_text(
        BASIC_CONFIG.replace('["data/train/*.jsonl"]', '["data/train/*"]')
        .replace('["data/eval/*.jsonl"]', '["data/eval/*.parquet", "data/eval/*.csv"]'),
        encoding="utf-8")
    before = tree_digest(root)
    for fmt in ("markdown", "json", "sarif"):
        result = run(root, "-q", "--format", fmt, "--no-cache")
        assert result.exit_code == 1
    assert tree_digest(root, skip="\0") == before  # not even a cache directory
    result = run(root, "-q")
    assert result.exit_code == 1
    assert tree_digest(root) == before             # the cache is the only thing written
    assert "Exact copy of a train row" in result.stdout
    assert "machine-generated dataset card" in result.stdout


# --- help -------------------------------------------------------------------------------

def test_help_documents_every_option():
    result = CliRunner().invoke(main, ["audit", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for param in audit_command.params:
        if not isinstance(param, click.Option):
            continue
        for opt in param.opts:
            assert opt in text, opt
        assert param.help, f"{param.name} has no help text"
        assert " ".join(param.help.split())[:40] in text
    for word in ("--format [markdown|json|sarif|text]", "--fail-on [error|warning|notice|never]",
                 "Exits 0", "1 when", "2 on bad input"):
        assert word in text, word


def test_top_level_help_and_version():
    runner = CliRunner()
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0 and "audit" in result.stdout
    assert "Exit codes: 0 pass, 1 findings at or above the fail level, 2 bad input or usage." \
        in " ".join(result.stdout.split())
    version = runner.invoke(main, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("eval-firewall, version ")


# --- the installed command --------------------------------------------------------------

def installed() -> str:
    exe = Path(sys.executable).parent / "eval-firewall"
    return str(exe) if exe.exists() else shutil.which("eval-firewall")


def test_installed_command_in_a_subprocess(repo):
    root = repo(TRAIN, leaky_eval())
    proc = subprocess.run([installed(), "audit"], cwd=root, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("**❌ Found ")
    assert "eval-firewall: read eval (12 rows) in " in proc.stderr
    assert "Traceback" not in proc.stderr


def test_installed_command_bad_config_and_module_entry_point(repo):
    root = repo(TRAIN, EVAL, BASIC_CONFIG + "colour: red\n")
    proc = subprocess.run([installed(), "audit", "-q"], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "eval-firewall: error: .eval-firewall.yml:16: field 'colour': " \
                          "unknown key\n"
    proc = subprocess.run([sys.executable, "-m", "eval_firewall", "audit", "-q",
                           "--fail-on", "never"], cwd=root, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("eval-firewall: error: ")


def test_progress_animates_on_a_terminal_and_is_plain_lines_otherwise():
    import io
    import time

    from eval_firewall.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, tty in ((Terminal(), True), (io.StringIO(), False)):
        with Progress(stream=stream).stage("read eval", total=3) as stage:
            stage.advance(3)
        with Progress(stream=stream).stage("distil static model") as stage:
            time.sleep(0.35)  # a few ticks of the spinner: the line is redrawn, not frozen
        text = stream.getvalue()
        assert ("\r" in text) is tty
        lines = [line.rsplit("\r\033[K", 1)[-1] for line in text.split("\n")[:-1]]
        if tty:
            assert "read eval… 0/3 (0%)" in text
            assert text.count("distil static model… ") >= 3
            assert lines[0].startswith("✓ read eval (3 rows) in ")
            assert lines[-1].startswith("✓ distil static model in ")
        else:
            assert lines == ["eval-firewall: read eval…", lines[1],
                             "eval-firewall: distil static model…", lines[3]]
            assert lines[1].startswith("eval-firewall: read eval (3 rows) in ")
            assert lines[3].startswith("eval-firewall: distil static model in 0.")
    silent = io.StringIO()
    with Progress(enabled=False, stream=silent).stage("read eval") as stage:
        stage.advance()
    assert silent.getvalue() == ""


def test_invalid_rows_severity_decides_whether_bad_rows_fail_the_run(repo):
    rows = [dict(r) for r in EVAL]
    rows[3] = {"answer": "no question here"}
    root = repo(TRAIN, rows, CLEAN_CONFIG)
    assert run(root, "-q").exit_code == 1
    root = repo(TRAIN, rows, CLEAN_CONFIG + "invalid_rows: warning\n")
    result = run(root, "-q", "--format", "json")
    assert result.exit_code == 0
    [finding] = json.loads(result.stdout)["findings"]
    assert (finding["rule"], finding["severity"], finding["line"]) == ("invalid-row", "warning", 4)
