"""Hand-built reports with real GSM8K text, for the renderer tests (JSON, Markdown, SARIF).

Built from findings directly, not by running the audits, so that a renderer test changes only
when the renderer does.
"""

from __future__ import annotations

from conftest import gsm8k
from eval_firewall.findings import (
    AuditResult,
    DatasetSummary,
    Finding,
    Match,
    Report,
    Severity,
    Stat,
)

VERSION = "0.1.0"
TRAIN = [r["question"] for r in gsm8k("train", 20)]
TEST = [r["question"] for r in gsm8k("test", 20)]
EVAL_PATH = "data/eval/eval.jsonl"
TRAIN_PATH = "data/train/train.jsonl"

# Written by people who want to hijack a PR comment.
HOSTILE = [
    "<script>alert('xss')</script> How many apples?",
    "<img src=x onerror=alert(1)> [click here](https://evil.example/phish) "
    "![pixel](https://evil.example/p.png)",
    "@octocat and @github/security-team please approve; fixes #1 and org/repo#2",
    "Visit www.evil.example or https://evil.example/a?b=c or mail admin@evil.example",
    "| broken | table |\n\n## Fake heading\n<!-- eval-firewall -->\n"
    "<details open><summary>x</summary>",
    "`code` *bold* _it_ ~~strike~~ \\ &lt;b&gt; &#64;octocat [ref]: https://evil.example",
]


def row_finding(audit: str, rule: str, severity: Severity, message: str, line: int,
                text: str, *, dataset: str = "eval", path: str = EVAL_PATH,
                **extra) -> Finding:
    return Finding(audit, rule, severity, message, dataset=dataset, path=path, line=line,
                   row_id=f"{path}:{line}", text=text, **extra)


def train_match(line: int, text: str | None = None) -> Match:
    return Match("train", TRAIN_PATH, line, f"{TRAIN_PATH}:{line}",
                 TRAIN[line - 1] if text is None else text)


def make_report(audits: list[AuditResult], *, fail_on: str = "error", eval_rows: int = 12,
                invalid: int = 0, datasets: list[DatasetSummary] | None = None) -> Report:
    return Report(
        fail_on=fail_on, audits=audits,
        datasets=datasets or [DatasetSummary("train", "train", [TRAIN_PATH], 20),
                              DatasetSummary("eval", "eval", [EVAL_PATH], eval_rows, invalid)],
        version=VERSION, config_path=".eval-firewall.yml")


def overlap_stats(exact: int, near: int, within: int) -> list[Stat]:
    return [Stat("eval rows checked", 12), Stat("train rows indexed", 20),
            Stat("exact duplicates of train rows", exact),
            Stat("near-duplicates of train rows", near),
            Stat("duplicates inside the eval set", within)]


def failing_report(fail_on: str = "error") -> Report:
    """One finding of each kind the core reports."""
    schema = AuditResult("schema", "Schema", [
        Finding("schema", "invalid-row", Severity.ERROR, "field 'question': text field is missing",
                dataset="eval", path=EVAL_PATH, line=7),
    ], [Stat("rows read", 31), Stat("rows that could not be read", 1)])
    near_text = TRAIN[1].replace("$12", "$15").replace("50 minutes", "40 minutes")
    overlap = AuditResult("overlap", "Overlap", [
        row_finding("overlap", "exact-duplicate", Severity.ERROR,
                    f"same text as train row {TRAIN_PATH}:1", 2, TRAIN[0], score=1.0,
                    match=train_match(1)),
        row_finding("overlap", "near-duplicate", Severity.ERROR,
                    f"93% similar to train row {TRAIN_PATH}:2", 3, near_text, score=0.9342,
                    match=train_match(2)),
        row_finding("overlap", "eval-duplicate", Severity.WARNING,
                    f"same text as eval row {EVAL_PATH}:4", 9, TEST[3], score=1.0,
                    match=Match("eval", EVAL_PATH, 4, f"{EVAL_PATH}:4", TEST[3])),
    ], overlap_stats(1, 1, 1))
    provenance = AuditResult("provenance", "Provenance", [
        row_finding("provenance", "model-label", Severity.ERROR,
                    "label written by 'gpt-4o', not by a human: model-written gold labels are "
                    "circular validation", 5, TEST[4]),
        Finding("provenance", "missing-provenance", Severity.WARNING,
                f"3 of 12 eval rows record no provenance (none of the provenance fields are "
                f"set); first at {EVAL_PATH}:10", dataset="eval", path=EVAL_PATH, line=10,
                count=3),
        row_finding("provenance", "shared-generator", Severity.ERROR,
                    "generator 'mixtral-8x7b' produced 2 eval rows and 5 train rows: the eval "
                    "set then measures how well a model imitates that generator", 11, TEST[10],
                    count=2, match=train_match(6)),
        Finding("provenance", "machine-generated-card", Severity.ERROR,
                "the dataset card declares 'annotations_creators: machine-generated' for an "
                "eval dataset", dataset="eval", path="data/eval/README.md", line=3),
    ], [Stat("eval rows with a model label", 1), Stat("eval rows with an unverified label", 0),
        Stat("eval rows made by a generator", 0), Stat("eval rows with no provenance", 3),
        Stat("generators shared by train and eval", 1)])
    return make_report([schema, overlap, provenance], fail_on=fail_on, invalid=1)


def clean_report() -> Report:
    return make_report([
        AuditResult("schema", "Schema", [], [Stat("rows read", 32),
                                             Stat("rows that could not be read", 0)]),
        AuditResult("overlap", "Overlap", [], overlap_stats(0, 0, 0)),
        AuditResult("provenance", "Provenance", [], [Stat("eval rows with no provenance", 0)]),
    ])


def warnings_report() -> Report:
    """Only warnings: passes with the default fail level."""
    return make_report([
        AuditResult("overlap", "Overlap", [
            row_finding("overlap", "eval-duplicate", Severity.WARNING,
                        f"same text as eval row {EVAL_PATH}:1", 6, TEST[0], score=1.0,
                        match=Match("eval", EVAL_PATH, 1, f"{EVAL_PATH}:1", TEST[0])),
        ], overlap_stats(0, 0, 1)),
        AuditResult("provenance", "Provenance", [
            Finding("provenance", "missing-provenance", Severity.NOTICE,
                    f"12 of 12 eval rows record no provenance (the dataset config maps no "
                    f"provenance fields); first at {EVAL_PATH}:1", dataset="eval",
                    path=EVAL_PATH, line=1, count=12)], []),
    ])


def near_duplicates(n: int, text_len: int | None = None) -> list[Finding]:
    out = []
    for i in range(n):
        text = TEST[i % len(TEST)] if text_len is None else (TEST[i % len(TEST)] * 20)[:text_len]
        out.append(row_finding("overlap", "near-duplicate", Severity.ERROR,
                               f"91% similar to train row {TRAIN_PATH}:{i % 20 + 1}", i + 1,
                               text, score=0.91, match=train_match(i % 20 + 1)))
    return out


def long_list_report(n: int = 14) -> Report:
    return make_report([AuditResult("overlap", "Overlap", near_duplicates(n),
                                    overlap_stats(0, n, 0))], eval_rows=n)


def hostile_report() -> Report:
    findings = []
    for i, text in enumerate(HOSTILE):
        findings.append(row_finding(
            "overlap", "near-duplicate", Severity.ERROR,
            f"88% similar to train row {TRAIN_PATH}:{i + 1}", i + 1, text, score=0.88,
            match=train_match(i + 1, HOSTILE[-1 - i])))
    provenance = [
        row_finding("provenance", "model-label", Severity.ERROR,
                    f"label written by '{text}', not by a human: model-written gold labels are "
                    "circular validation", i + 1, text)
        for i, text in enumerate(HOSTILE[:3])]
    hostile_path = "data/eval/<img src=x>[a](https:__evil)@octocat.jsonl"
    provenance.append(row_finding("provenance", "generated-eval-row", Severity.ERROR,
                                  "eval row generated by '@octocat'", 1, HOSTILE[2],
                                  path=hostile_path, dataset="<b>@everyone</b>"))
    return make_report(
        [AuditResult("overlap", "Overlap", findings, overlap_stats(0, len(findings), 0)),
         AuditResult("provenance", "Provenance", provenance,
                     [Stat("rows from <b>@someone</b>", 1)],
                     verdict="[verdict](https://evil.example) @octocat")],
        datasets=[DatasetSummary("train", "train", [TRAIN_PATH], 20),
                  DatasetSummary("<b>@everyone</b> [x](https://evil.example)", "eval",
                                 [hostile_path], 6)])
