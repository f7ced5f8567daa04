"""Disagreement audit: blind answers joined to labels, the rate with its Wilson interval, kappa,
per-annotator rates, the gate, and every sheet edge case with its file, line and message."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ID_DATASETS, gsm8k, write_jsonl
from eval_firewall.audits.disagreement import check
from eval_firewall.audits.stats import answers_needed, wilson
from eval_firewall.cli import main
from eval_firewall.config import DisagreementConfig, load_config
from eval_firewall.engine import run_audits
from eval_firewall.errors import UserError
from eval_firewall.findings import Severity
from eval_firewall.inputs.annotations import Annotation, read_sheet, row_sha
from eval_firewall.report import render_markdown
from eval_firewall.rows import Row

Z = 1.959963984540054

CONFIG = ID_DATASETS + """\
audits:
  overlap: {enabled: false}
  provenance: {enabled: false}
  disagreement: {annotations: "annotations/*.csv", max_disagreement: 0.15}
"""


# --- independent reference computations -------------------------------------------------------


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


def cohen_by_hand(a: list[str], b: list[str]) -> float:
    n = len(a)
    po = sum(x == y for x, y in zip(a, b)) / n
    cats = set(a) | set(b)
    pe = sum((a.count(c) / n) * (b.count(c) / n) for c in cats)
    return (po - pe) / (1 - pe)


def fleiss_by_hand(ratings: list[list[str]]) -> float:
    n_raters = len(ratings[0])
    cats = sorted({c for r in ratings for c in r})
    counts = [[r.count(c) for c in cats] for r in ratings]
    N = len(ratings)
    p_i = [(sum(x * x for x in row) - n_raters) / (n_raters * (n_raters - 1)) for row in counts]
    p_bar = sum(p_i) / N
    p_j = [sum(row[j] for row in counts) / (N * n_raters) for j in range(len(cats))]
    pe = sum(p * p for p in p_j)
    return (p_bar - pe) / (1 - pe)


# --- helpers ----------------------------------------------------------------------------------


def rows_from_gsm8k(n: int) -> list[Row]:
    return [Row("eval", "eval", "data/eval.jsonl", i + 1, f"q{i}", r["question"], r["answer"])
            for i, r in enumerate(gsm8k("test", n))]


def final(row: Row) -> str:
    return row.label.split("####")[-1].strip()


def answer(row: Row, text: str | None, annotator: str = "ana", line: int | None = None,
           sheet: str = "annotations/ana.csv", sha: str | None = "auto") -> Annotation:
    return Annotation(sheet, line or row.line + 15, row.dataset, row.row_id, annotator, text,
                      row_sha(row) if sha == "auto" else sha)


def stats(result) -> dict:
    return {s.label: s.value for s in result.stats}


def rules(result) -> list[str]:
    return [f.rule for f in result.findings]


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


# --- statistics -------------------------------------------------------------------------------


@pytest.mark.parametrize("k, n", [(0, 10), (3, 30), (5, 79), (40, 50), (1, 1)])
def test_wilson_matches_the_formula(k, n):
    low, high = wilson(k, n)
    ref = wilson_by_hand(k, n)
    assert low == pytest.approx(max(0.0, ref[0]), abs=1e-12)
    assert high == pytest.approx(min(1.0, ref[1]), abs=1e-12)


def test_rate_interval_and_per_annotator_rates():
    rows = rows_from_gsm8k(30)
    ann = [answer(r, "1" if i in (4, 9, 17) else final(r)) for i, r in enumerate(rows)]
    ann += [answer(r, final(r) if i != 2 else "-1", "ben", sheet="annotations/ben.csv")
            for i, r in enumerate(rows)]
    result = check(rows, ann, DisagreementConfig(max_disagreement=0.15))
    s = stats(result)
    low, high = wilson_by_hand(4, 60)
    assert s["answers compared"] == 60 and s["disagreeing answers"] == 4
    assert s["disagreement rate"] == pct(4 / 60)
    assert s["95% Wilson interval"] == f"{pct(low)} – {pct(high)}"
    assert s["annotator ana: disagreement"] == "10.0% (3 of 30)"
    assert s["annotator ben: disagreement"] == "3.3% (1 of 30)"
    assert s["matcher"] == "numeric (eval)"
    assert s["kappa"] == "not computed: the labels are not categories"
    # One finding per disagreeing row, with both answers and where each came from.
    rows_found = [f for f in result.findings if f.rule == "label-disagreement"]
    assert [f.row_id for f in rows_found] == ["q2", "q4", "q9", "q17"]
    q2 = rows_found[0]
    assert q2.message == (f"1 of 2 annotators disagree with the label '{final(rows[2])}': ben "
                          f"answered '-1' (annotations/ben.csv:{rows[2].line + 15})")
    assert (q2.path, q2.line, q2.severity) == ("data/eval.jsonl", 3, Severity.NOTICE)


def test_fails_above_the_threshold():
    rows = rows_from_gsm8k(40)
    ann = [answer(r, "0" if i < 12 else final(r)) for i, r in enumerate(rows)]
    result = check(rows, ann, DisagreementConfig(max_disagreement=0.15))
    [gate] = [f for f in result.findings if f.rule == "disagreement-rate"]
    low, high = wilson_by_hand(12, 40)
    assert gate.severity is Severity.ERROR
    assert gate.message == (f"disagreement rate 30.0% (12 of 40 answers, 95% CI {pct(low)}–"
                            f"{pct(high)}) exceeds max_disagreement 15.0%")
    assert result.verdict.startswith("Fail: 30.0% of 40 blind answers disagree")


def test_warns_when_the_sample_is_too_small_to_exclude_the_threshold():
    rows = rows_from_gsm8k(20)
    ann = [answer(r, "0" if i == 0 else final(r)) for i, r in enumerate(rows)]
    result = check(rows, ann, DisagreementConfig(max_disagreement=0.15))
    assert "disagreement-rate" not in rules(result)
    [warn] = [f for f in result.findings if f.rule == "disagreement-sample-too-small"]
    low, high = wilson_by_hand(1, 20)
    assert high > 0.15
    needed = answers_needed(0.05, 0.15)
    assert warn.severity is Severity.WARNING
    assert warn.message == (f"disagreement rate 5.0% (1 of 20 answers) is within "
                            f"max_disagreement 15.0%, but its 95% interval {pct(low)}–"
                            f"{pct(high)} includes the limit: about {needed} answers at this "
                            "rate would show it is below the limit")
    # ``needed`` is the smallest sample whose interval at this rate lies below the limit.
    assert wilson_by_hand_p(0.05, needed)[1] < 0.15 <= wilson_by_hand_p(0.05, needed - 1)[1]


def wilson_by_hand_p(p: float, n: int) -> tuple[float, float]:
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


def test_passes_with_a_large_agreeing_sample():
    rows = rows_from_gsm8k(200)
    ann = [answer(r, "0" if i % 50 == 0 else final(r)) for i, r in enumerate(rows)]
    result = check(rows, ann, DisagreementConfig(max_disagreement=0.15))
    assert not {"disagreement-rate", "disagreement-sample-too-small"} & set(rules(result))
    assert result.verdict.startswith("Pass: 2.0% of 200 blind answers")


def choice_rows(labels: str) -> list[Row]:
    return [Row("mc", "eval", "data/mc.jsonl", i + 1, f"m{i}", f"Question {i}?", label)
            for i, label in enumerate(labels)]


def test_cohen_kappa_for_one_annotator_on_categorical_labels():
    labels = "ABCDABCDABCDAABB"
    given = "ABCDABCAABCDBABC"
    rows = choice_rows(labels)
    ann = [answer(r, f"({g.lower()})") for r, g in zip(rows, given)]
    result = check(rows, ann, DisagreementConfig())
    s = stats(result)
    assert s["matcher"] == "choice (mc)"
    assert s["Cohen's kappa (ana vs labels)"] == f"{cohen_by_hand(list(labels), list(given)):.3f}"
    assert s["disagreeing answers"] == sum(a != b for a, b in zip(labels, given))


def test_fleiss_kappa_for_several_annotators_plus_the_labels():
    labels = "ABCDABCDABCDAABB"
    ana = "ABCDABCAABCDBABC"
    ben = "ABCDBBCDABCCAABB"
    rows = choice_rows(labels)
    ann = [answer(r, a, "ana") for r, a in zip(rows, ana)]
    ann += [answer(r, b, "ben", sheet="annotations/ben.csv") for r, b in zip(rows, ben)]
    ann.append(answer(rows[0], None, "chen", sheet="annotations/chen.csv"))  # chen: empty only
    result = check(rows, ann, DisagreementConfig())
    s = stats(result)
    expected = fleiss_by_hand([[a, b, lab] for a, b, lab in zip(ana, ben, labels)])
    assert s["Fleiss' kappa (2 annotators + labels, 16 rows)"] == f"{expected:.3f}"
    assert s["Cohen's kappa (ben vs labels)"] == f"{cohen_by_hand(list(labels), list(ben)):.3f}"


def test_kappa_undefined_with_a_single_category():
    rows = choice_rows("AAAA")
    result = check(rows, [answer(r, "A") for r in rows], DisagreementConfig())
    assert stats(result)["Cohen's kappa (ana vs labels)"] == "undefined (a single category)"


# --- edge cases -------------------------------------------------------------------------------


def test_sheet_edge_cases_are_findings_at_the_sheet_line():
    rows = rows_from_gsm8k(6)
    changed = Row("eval", "eval", "data/eval.jsonl", 6, "q5", rows[5].text + " Quickly.",
                  rows[5].label)
    unlabelled = Row("eval", "eval", "data/eval.jsonl", 7, "q6", "What is 2+2?", None)
    current = rows[:5] + [changed, unlabelled]
    ann = [
        answer(rows[0], final(rows[0]), line=17),
        Annotation("annotations/ana.csv", 18, "eval", "q99", "ana", "4", "0" * 16),
        answer(rows[0], "5", line=19),                      # the same row again
        answer(rows[1], None, line=20),                     # empty
        answer(rows[2], None, line=21),
        answer(rows[5], final(rows[5]), line=22),           # sampled before the row changed
        answer(unlabelled, "4", line=23),
        answer(rows[3], final(rows[3]), line=24, sha=None),  # a sheet without hashes
    ]
    result = check(current, ann, DisagreementConfig())
    found = {f.rule: f for f in result.findings}
    unknown = found["annotation-unknown-row"]
    assert (unknown.path, unknown.line, unknown.severity) == ("annotations/ana.csv", 18,
                                                              Severity.WARNING)
    assert unknown.message == ("row id 'q99' is not in dataset 'eval' (removed or renamed since "
                               "sampling?); not compared")
    dup = found["annotation-duplicate"]
    assert (dup.path, dup.line) == ("annotations/ana.csv", 19)
    assert dup.message == ("annotator 'ana' has row 'q0' twice (first at annotations/ana.csv:17)"
                           "; this one is ignored")
    empty = found["annotation-empty"]
    assert (empty.path, empty.line, empty.count, empty.severity) == (
        "annotations/ana.csv", 20, 2, Severity.NOTICE)
    assert empty.message == "2 empty answers skipped (first at line 20, row 'q1')"
    stale = found["annotation-stale"]
    assert (stale.path, stale.line) == ("annotations/ana.csv", 22)
    assert stale.message == (f"row 'q5' changed since the sheet was sampled (content hash "
                             f"{row_sha(rows[5])}, now {row_sha(changed)} at data/eval.jsonl:6); "
                             "not compared: re-annotate it")
    nolabel = found["annotation-no-label"]
    assert nolabel.message == "row 'q6' has no label to compare with (data/eval.jsonl:7)"
    s = stats(result)
    assert (s["skipped: empty"], s["skipped: unknown"], s["skipped: duplicate"],
            s["skipped: stale"], s["skipped: no label"]) == (2, 1, 1, 1, 1)
    # Only the first q0 answer and the hash-less q3 answer were compared; both agree.
    assert s["answers compared"] == 2 and s["disagreeing answers"] == 0


def test_nothing_to_compare_is_a_warning():
    rows = rows_from_gsm8k(3)
    result = check(rows, [answer(rows[0], None)], DisagreementConfig())
    assert rules(result) == ["annotation-empty", "disagreement-sample-too-small"]
    assert result.verdict == "No annotation could be compared with a label."


# --- sheets on disk, the engine and the CLI ---------------------------------------------------


def make_repo(tmp_path: Path, n: int = 30, config: str = CONFIG) -> Path:
    rows = [{"id": f"g{i:03d}", **r} for i, r in enumerate(gsm8k("test", n))]
    write_jsonl(tmp_path / "data/eval.jsonl", rows)
    write_jsonl(tmp_path / "data/train.jsonl", gsm8k("train", 5))
    (tmp_path / ".eval-firewall.yml").write_text(config, encoding="utf-8")
    return tmp_path


def cli(root: Path, *args: str):
    return CliRunner().invoke(main, [*args, "--config", str(root / ".eval-firewall.yml")],
                              catch_exceptions=False)


def fill(sheet: Path, out: Path, annotator: str, answers: dict[str, str]) -> None:
    lines = sheet.read_text(encoding="utf-8").splitlines(keepends=True)
    comments = "".join(l for l in lines if l.startswith("#"))
    records = list(csv.reader(io.StringIO("".join(l for l in lines if not l.startswith("#")))))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(records[0])
    for rec in records[1:]:
        w.writerow([rec[0], rec[1], annotator, rec[3], answers.get(rec[0], "")])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(comments + buf.getvalue(), encoding="utf-8")


def labels(root: Path) -> dict[str, str]:
    with open(root / "data/eval.jsonl", encoding="utf-8") as fh:
        return {r["id"]: r["answer"].split("####")[-1].strip() for r in map(json.loads, fh)}


def test_end_to_end_sample_fill_audit(tmp_path: Path):
    root = make_repo(tmp_path)
    blank = tmp_path / "blank.csv"
    assert cli(root, "sample", "--dataset", "eval", "--n", "20", "--seed", "1",
               "--output", str(blank)).exit_code == 0
    truth = labels(root)
    ids = [a.row_id for a in read_sheet(blank, "blank.csv").annotations]
    fill(blank, root / "annotations/ana.csv", "ana", {i: truth[i] for i in ids})
    wrong = {i: ("$" + truth[i] if k % 4 else "999") for k, i in enumerate(ids)}
    fill(blank, root / "annotations/ben.csv", "ben", wrong)
    result = cli(root, "audit", "-q", "--format", "json")
    assert result.exit_code == 0, result.output       # a warning does not fail the run
    report = json.loads(result.stdout)
    [audit_json] = [a for a in report["audits"] if a["audit"] == "disagreement"]
    s = {x["label"]: x["value"] for x in audit_json["stats"]}
    assert s["annotator ana: disagreement"] == "0.0% (0 of 20)"
    assert s["annotator ben: disagreement"] == "25.0% (5 of 20)"   # "$18" matches 18
    assert s["disagreement rate"] == "12.5%"
    disagreeing = [f for f in report["findings"] if f["rule"] == "label-disagreement"]
    assert len(disagreeing) == 5
    assert all("ben answered '999' (annotations/ben.csv:" in f["message"] for f in disagreeing)
    assert audit_json["counts"]["warning"] == 1    # 40 answers cannot exclude 15%


def test_not_configured_is_reported_as_not_run(tmp_path: Path):
    root = make_repo(tmp_path, config=CONFIG.replace(
        '  disagreement: {annotations: "annotations/*.csv", max_disagreement: 0.15}\n', ""))
    report = run_audits(load_config(root / ".eval-firewall.yml"))
    [a] = [a for a in report.audits if a.audit == "disagreement"]
    assert a.skipped == "no annotation sheets configured (audits.disagreement.annotations)"
    assert "Not run: no annotation sheets configured" in render_markdown(report)


def write_sheet(root: Path, name: str, text: str) -> None:
    (root / "annotations").mkdir(exist_ok=True)
    (root / "annotations" / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize("name, text, message", [
    ("ana.csv", "row_id,text\ng000,hi\n",
     "annotations/ana.csv:1: field 'answer': the sheet's header has no 'answer' column "
     "(columns: row_id, text)"),
    ("ana.csv", "# dataset: eval\n#\nrow_id,answer\ng000,1,2\n",
     "annotations/ana.csv:4: expected 2 fields, found 3"),
    ("ana.csv", "row_id,answer\n,4\n", "annotations/ana.csv:2: field 'row_id': row_id is empty"),
    ("ana.csv", "# dataset: nope\nrow_id,answer\ng000,4\n",
     "annotations/ana.csv: field 'dataset': 'nope' is not an eval dataset of "
     ".eval-firewall.yml (eval datasets: eval)"),
    ("ana.csv", "# seed: seven\nrow_id,answer\ng000,4\n",
     "annotations/ana.csv: field 'seed': sheet header 'seed' must be a whole number "
     "(got 'seven')"),
    ("ana.csv", "", "annotations/ana.csv:1: the sheet has no header row"),
])
def test_malformed_csv_sheets_are_one_line_errors(tmp_path: Path, name, text, message):
    root = make_repo(tmp_path)
    write_sheet(root, name, text)
    result = cli(root, "audit", "-q")
    assert result.exit_code == 2
    assert result.stderr == f"eval-firewall: error: {message}\n"


@pytest.mark.parametrize("text, message", [
    ('{"eval_firewall_sheet": 1, "dataset": "eval"}\n{"row_id": "g000", "answer": "4"\n',
     "annotations/s.jsonl:2: invalid JSON: Expecting ',' delimiter (column 33)"),
    ('{"row_id": "g000"}\n', "annotations/s.jsonl:1: field 'answer': the sheet row has no "
                             "'answer' key"),
    ('[1, 2]\n', "annotations/s.jsonl:1: expected a JSON object"),
])
def test_malformed_jsonl_sheets_are_one_line_errors(tmp_path: Path, text, message):
    root = make_repo(tmp_path, config=CONFIG.replace("annotations/*.csv", "annotations/*.jsonl"))
    write_sheet(root, "s.jsonl", text)
    result = cli(root, "audit", "-q")
    assert result.exit_code == 2
    assert result.stderr == f"eval-firewall: error: {message}\n"


def test_a_glob_matching_no_sheet_is_an_error(tmp_path: Path):
    root = make_repo(tmp_path)
    result = cli(root, "audit", "-q")
    assert result.exit_code == 2
    assert result.stderr == ("eval-firewall: error: .eval-firewall.yml:15: field "
                             "'audits.disagreement.annotations': glob 'annotations/*.csv' "
                             "matches no file\n")


def test_jsonl_sheet_round_trip(tmp_path: Path):
    root = make_repo(tmp_path, config=CONFIG.replace("annotations/*.csv", "annotations/*.jsonl"))
    out = root / "annotations/ana.jsonl"
    assert cli(root, "sample", "--dataset", "eval", "--n", "5", "--output",
               str(out)).exit_code == 0
    truth = labels(root)
    lines = out.read_text(encoding="utf-8").splitlines()
    filled = [lines[0]] + [json.dumps({**json.loads(l), "annotator": "ana",
                                       "answer": int(truth[json.loads(l)["row_id"]])})
                           for l in lines[1:]]
    out.write_text("\n".join(filled) + "\n", encoding="utf-8")
    report = run_audits(load_config(root / ".eval-firewall.yml"))
    [a] = [a for a in report.audits if a.audit == "disagreement"]
    assert {s.label: s.value for s in a.stats}["annotator ana: disagreement"] == "0.0% (0 of 5)"


def test_report_section_shows_rates_and_both_answers(tmp_path: Path):
    rows = [Row("eval", "eval", "data/eval.jsonl", 1, "x1", "Is *this* <b>@team</b> [ok](x)?",
                "#### 3"),
            Row("eval", "eval", "data/eval.jsonl", 2, "x2", "Two?", "#### 2")]
    ann = [answer(rows[0], "4"), answer(rows[1], "2")]
    from eval_firewall.findings import Report
    result = check(rows, ann, DisagreementConfig())
    text = render_markdown(Report("error", [result], []))
    assert "#### Disagreement" in text
    assert "| annotator ana: disagreement | 50.0% \\(1 of 2\\) |" in text
    assert ("1 of 1 annotator disagrees with the label '3': ana answered '4' "
            "\\(annotations/ana.csv:16\\)") in text
    assert "<b>" not in text and "[ok](x)" not in text and "@team" not in text
    assert "Is \\*this\\* &lt;b&gt;@\u200bteam&lt;/b&gt; \\[ok\\]\\(x\\)?" in text


def test_user_error_for_a_sheet_naming_another_dataset_than_the_config(tmp_path: Path):
    root = make_repo(tmp_path, config=CONFIG.replace(
        'max_disagreement: 0.15}', 'max_disagreement: 0.15, dataset: eval}').replace(
        "    id: id\n", "    id: id\n  - name: eval2\n    role: eval\n    paths: [data/eval.jsonl]"
        "\n    text: question\n    label: answer\n    id: id\n"))
    write_sheet(root, "ana.csv", "# dataset: eval2\nrow_id,answer\ng000,4\n")
    with pytest.raises(UserError) as err:
        run_audits(load_config(root / ".eval-firewall.yml"))
    assert str(err.value) == ("annotations/ana.csv: field 'dataset': the sheet was sampled from "
                              "'eval2' but audits.disagreement.dataset is 'eval'")


def test_a_sheet_saved_by_a_spreadsheet_still_reads(tmp_path: Path):
    """Comment lines quoted and padded with empty cells, CRLF line ends, a byte-order mark."""
    sheet = tmp_path / "ana.csv"
    sheet.write_bytes(
        "\ufeff# eval-firewall annotation sheet (format 1),,,,\r\n"
        "# dataset: eval,,,,\r\n"
        '"#   Write only your final answer (for example 42, or a letter).",,,,\r\n'
        "row_id,sha,annotator,text,answer\r\n"
        'g001,abc,,"Two lines,\r\nof text",42\r\n'
        "g002,def,ana,Short,\r\n".encode("utf-8"))
    parsed = read_sheet(sheet, "ana.csv")
    assert parsed.meta.dataset == "eval"
    assert [(a.line, a.row_id, a.annotator, a.answer, a.sha) for a in parsed.annotations] == [
        (5, "g001", "ana", "42", "abc"), (7, "g002", "ana", None, "def")]


def test_several_annotators_in_one_sheet_by_the_annotator_column(tmp_path: Path):
    root = make_repo(tmp_path)
    truth = labels(root)
    lines = ["# dataset: eval", "row_id,annotator,answer"]
    for i, rid in enumerate(sorted(truth)[:10]):
        lines.append(f"{rid},ana,{truth[rid]}")
        lines.append(f"{rid},ben,{truth[rid] if i % 5 else '0'}")
    write_sheet(root, "all.csv", "\n".join(lines) + "\n")
    report = run_audits(load_config(root / ".eval-firewall.yml"))
    [a] = [a for a in report.audits if a.audit == "disagreement"]
    s = stats(a)
    assert s["annotators"] == 2 and s["answers compared"] == 20
    assert s["annotator ana: disagreement"] == "0.0% (0 of 10)"
    assert s["annotator ben: disagreement"] == "20.0% (2 of 10)"
    assert [f.line for f in a.findings if f.rule == "label-disagreement"] == [1, 6]


def test_each_sheet_line_has_its_own_fingerprint(tmp_path):
    """Issue #18 item 3, for every rule: sheet findings were fingerprinted by row id alone, so
    a waiver of one line about a row covered every other line about it."""
    from eval_firewall.audits.disagreement import _sheet_finding
    from eval_firewall.findings import Severity
    from eval_firewall.records import Annotation

    def line(annotator: str, answer: str | None, n: int) -> Annotation:
        return Annotation("annotations/a.csv", n, "eval", "g7", annotator, answer, None)

    prints = [_sheet_finding("annotation-unknown-row", Severity.WARNING, "unknown", a).fingerprint
              for a in (line("ana", "1", 2), line("ben", "1", 3), line("ana", "2", 4),
                        line("ana", "1", 9))]
    assert len(set(prints[:3])) == 3 and prints[0] == prints[3]      # moved: the same line
