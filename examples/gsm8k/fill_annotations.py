"""Fill the example's blind annotation sheet for two stand-in annotators, "ana" and "ben".

There were no human annotators for this bundled example, so this script stands in for them,
openly and deterministically. It is not how real sheets are made: real annotators answer the
questions themselves, without the labels. Run from this folder:

    eval-firewall sample --dataset gsm8k-eval --n 40 --seed 7 --stratify meta.verified_by \
        --output annotations/blank.csv --force
    python fill_annotations.py annotations/blank.csv    # writes annotations/{ana,ben}.csv
    rm annotations/blank.csv

How the stand-ins answer:
- Normally with the final number of the row's GSM8K solution (which a careful person gets).
  ana writes bare numbers ("1200"); ben writes money with a dollar sign and thousands
  separators ("$1,200"), as people do, which the numeric matcher must accept.
- On a few rows they make the most common human slip on GSM8K, stopping one step early: they
  answer the result of the solution's second-to-last calculation. ana slips on 2 rows, ben on 3,
  and both slip on the same row once (SLIPS below, by position in the sheet).
- ben leaves one answer empty (an empty answer is skipped and counted by the audit).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SLIPS = {"ana": {5, 19}, "ben": {12, 19, 33}}
EMPTY = {"ben": {27}}


def solutions() -> dict[str, str]:
    with open(HERE / "data/eval/gsm8k-test.jsonl", encoding="utf-8") as fh:
        return {r["id"]: r["answer"] for r in map(json.loads, fh)}


def final(solution: str) -> str:
    return solution.split("####")[-1].strip().replace(",", "")


def one_step_early(solution: str) -> str:
    steps = re.findall(r"<<[^>]*=([-\d.]+)>>", solution)
    return steps[-2] if len(steps) >= 2 else str(int(float(final(solution))) + 1)


def written_by(annotator: str, number: str, question: str) -> str:
    if annotator == "ben" and "$" in question:
        value = float(number)
        return f"${value:,.0f}" if value.is_integer() else f"${value:,.2f}"
    return number


def main(blank: Path) -> None:
    text = blank.read_text(encoding="utf-8")
    comments = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    rows = list(csv.reader(io.StringIO("".join(
        line for line in text.splitlines(keepends=True) if not line.startswith("#")))))
    header, body = rows[0], rows[1:]
    col = {name: header.index(name) for name in header}
    answers = solutions()
    for annotator in ("ana", "ben"):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for position, row in enumerate(body):
            row = list(row)
            solution = answers[row[col["row_id"]]]
            if position in EMPTY.get(annotator, ()):
                answer = ""
            elif position in SLIPS[annotator]:
                answer = written_by(annotator, one_step_early(solution), row[col["text"]])
            else:
                answer = written_by(annotator, final(solution), row[col["text"]])
            row[col["annotator"]] = annotator
            row[col["answer"]] = answer
            writer.writerow(row)
        (blank.parent / f"{annotator}.csv").write_text(comments + out.getvalue(),
                                                       encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
