"""Blind annotation sheets: sampling eval rows, writing them without labels, reading them back.

A sheet is CSV (instructions and the sample's parameters in ``#`` comment lines above the
header) or JSONL (a first line holding the same as an object). Each row carries the dataset row
id, a content hash of the row's text and label at sampling time, the text, an ``annotator``
column and an empty ``answer`` column. The sheet alone reproduces the sample (dataset, seed, n,
stratify field are recorded) and tells a later audit when a row changed since it was sampled.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..config import Config, LimitsConfig
from ..datasets import relative
from ..datasets.fields import MISSING, as_scalar_text, describe_columns, get_path, shown
from ..datasets.jsonl import parse_json_line
from ..datasets.lines import open_binary
from ..errors import UserError
from ..records import Annotation, row_sha
from ..rows import Row
from ..safeio import paths as containment

SHEET_FORMAT = 1
CSV_COLUMNS = ["row_id", "sha", "annotator", "text", "answer"]
JSONL_HEADER_KEY = "eval_firewall_sheet"
SHEET_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl"}
MISSING_GROUP = "(missing)"

MAX_LISTED_LABELS = 20   # label values listed in a sheet's instructions, at most
ANSWER_LINE = 'Write only your answer in the "answer" column, as short as the question allows.'
INSTRUCTIONS = [
    "Answer each row yourself, without looking at the dataset's answers.",
    ANSWER_LINE,
    'Put your name in the "annotator" column, or keep one copy of this file per annotator',
    "(the file name then names the annotator).",
    'Leave "answer" empty when you cannot answer: the row is skipped and counted.',
    'Do not edit "row_id", "sha" or "text": they tie your answer to the dataset row.',
]


@dataclass(frozen=True, slots=True)
class SheetMeta:
    """How a sheet was sampled: enough to sample it again."""

    dataset: str | None = None
    seed: int | None = None
    n: int | None = None
    stratify: str | None = None
    population: int | None = None

    def command(self, output: str) -> str:
        """The ``eval-firewall sample`` command that draws this sample again."""
        parts = ["eval-firewall", "sample", "--dataset", str(self.dataset), "--n", str(self.n),
                 "--seed", str(self.seed)]
        if self.stratify:
            parts += ["--stratify", self.stratify]
        return " ".join(parts + ["--output", output])


@dataclass(frozen=True, slots=True)
class Sheet:
    path: str
    meta: SheetMeta
    annotations: list[Annotation]


# --- sampling ---------------------------------------------------------------------------------


def stratum(row: Row, field: str) -> str:
    """The row's value of the stratifying field (a group name for rows without one)."""
    value = get_path(row.record or {}, field)
    return MISSING_GROUP if value is MISSING else (as_scalar_text(value) or MISSING_GROUP)


def sample_rows(rows: Sequence[Row], n: int, *, seed: int, stratify: str | None = None
                ) -> list[Row]:
    """``n`` rows without replacement, in dataset order; deterministic for ``seed``.

    With ``stratify``, each value of that record field gets a share of ``n`` proportional to
    its size (largest remainders break ties in sorted value order). Rows need ``record`` then.
    """
    if n < 1:
        raise UserError("--n must be at least 1", field="n")
    if n > len(rows):
        raise UserError(f"cannot sample {n} rows from a dataset of {len(rows)} rows", field="n")
    rng = random.Random(seed)
    if not stratify:
        picked = rng.sample(range(len(rows)), n)
        return [rows[i] for i in sorted(picked)]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[stratum(row, stratify)].append(i)
    if set(groups) == {MISSING_GROUP}:
        raise UserError(f"no row has the field '{stratify}'", field="stratify")
    keys = sorted(groups)
    quotas = {k: n * len(groups[k]) / len(rows) for k in keys}
    alloc = {k: int(quotas[k]) for k in keys}
    rest = n - sum(alloc.values())
    for k in sorted(keys, key=lambda k: (-(quotas[k] - alloc[k]), keys.index(k)))[:rest]:
        alloc[k] += 1
    picked = []
    for k in keys:
        picked.extend(rng.sample(groups[k], alloc[k]))
    return [rows[i] for i in sorted(picked)]


# --- writing ----------------------------------------------------------------------------------


def sheet_format(path: Path) -> str:
    """A sheet's format from its extension (csv or jsonl); a user error for any other."""
    fmt = SHEET_EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise UserError("an annotation sheet must end in .csv or .jsonl", path=str(path))
    return fmt


def label_choices(labels: Sequence[str | None]) -> list[str] | None:
    """The dataset's label values when they are a few categories, else None.

    A few: at most MAX_LISTED_LABELS distinct values, each used twice on average, so that
    listing them names the categories without giving away any row's answer.
    """
    values = [v for v in labels if v is not None]
    distinct = sorted(set(values))
    if not distinct or len(distinct) > MAX_LISTED_LABELS or len(values) < 2 * len(distinct):
        return None
    return distinct


def instructions(choices: Sequence[str] | None = None) -> list[str]:
    """The sheet's instructions; with ``choices``, the answer line lists the label values."""
    if not choices:
        return list(INSTRUCTIONS)
    listed = ", ".join(json.dumps(c, ensure_ascii=False) for c in choices)
    line = f'Write only your answer in the "answer" column: one of {listed}.'
    return [line if item == ANSWER_LINE else item for item in INSTRUCTIONS]


def render_sheet(rows: Sequence[Row], meta: SheetMeta, fmt: str, output_name: str,
                 choices: Sequence[str] | None = None) -> str:
    """The text of a blind sheet: ids, hashes and texts, never the labels.

    ``choices``: the label values to list in the instructions (see :func:`label_choices`).
    """
    lines_of_instructions = instructions(choices)
    if fmt == "csv":
        buf = io.StringIO()
        buf.write(f"# eval-firewall annotation sheet (format {SHEET_FORMAT})\n")
        for key in ("dataset", "seed", "n", "stratify", "population"):
            value = getattr(meta, key)
            if value is not None:
                buf.write(f"# {key}: {value}\n")
        buf.write(f"# reproduce: {meta.command(output_name)}\n#\n# Instructions:\n")
        for line in lines_of_instructions:
            buf.write(f"#   {' '.join(line.split())}\n")
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([row.row_id, row_sha(row), "", row.text, ""])
        return buf.getvalue()
    header = {JSONL_HEADER_KEY: SHEET_FORMAT, "dataset": meta.dataset, "seed": meta.seed,
              "n": meta.n, "stratify": meta.stratify, "population": meta.population,
              "reproduce": meta.command(output_name), "instructions": " ".join(lines_of_instructions)}
    lines = [json.dumps(header, ensure_ascii=False)]
    lines += [json.dumps({"row_id": r.row_id, "sha": row_sha(r), "annotator": "",
                          "text": r.text, "answer": ""}, ensure_ascii=False) for r in rows]
    return "\n".join(lines) + "\n"


# --- reading ----------------------------------------------------------------------------------


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def read_sheet(path: Path, display: str, limits: LimitsConfig | None = None) -> Sheet:
    """Read one filled sheet; a malformed one is a UserError naming file and line.

    A sheet is read whole, so it is bounded by ``limits.max_file_bytes``, and each of its lines
    by ``limits.max_row_bytes``."""
    limits = limits or LimitsConfig()
    fmt = sheet_format(path)
    try:
        with open_binary(path, limits, display) as fh:
            content = fh.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text: {exc.reason}", path=display) from None
    except OSError as exc:
        raise UserError(f"cannot read annotation sheet: {exc.strerror or exc}",
                        path=display) from None
    for number, line in enumerate(content.splitlines(), start=1):
        if len(line) > limits.max_row_bytes:
            raise UserError(f"the line is longer than limits.max_row_bytes "
                            f"({int(limits.max_row_bytes)} bytes)", path=display, line=number)
    if fmt == "csv":
        csv.field_size_limit(int(limits.max_row_bytes))
        return _read_csv(content, display, path.stem)
    return _read_jsonl(content, display, path.stem, limits)


def _comments(lines: list[str]) -> tuple[dict[str, str], int]:
    """The sample's parameters from the ``#`` lines above a CSV sheet's header, and how many
    lines (comments and blank ones) come before the header."""
    meta: dict[str, str] = {}
    skip = 0
    for line in lines:
        stripped = line.strip()
        if stripped.startswith('"#'):
            # A spreadsheet saved the comment as a quoted cell ("# ...",,,).
            stripped = next(csv.reader([stripped]), [""])[0].strip()
        stripped = stripped.rstrip(",").strip()   # and padded it with empty cells
        if stripped.startswith("#"):
            key, sep, value = stripped.lstrip("#").strip().partition(":")
            if sep and key.strip() in ("dataset", "seed", "n", "stratify", "population"):
                meta[key.strip()] = value.strip()
            skip += 1
        elif not stripped:
            skip += 1
        else:
            break
    return meta, skip


def _read_csv(content: str, display: str, default_annotator: str) -> Sheet:
    lines = content.splitlines(keepends=True)
    meta, skip = _comments(lines)
    reader = csv.reader(io.StringIO("".join(lines[skip:])))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise UserError(f"invalid CSV: {exc}", path=display, line=skip + 1) from None
    if header is None:
        raise UserError("the sheet has no header row", path=display, line=skip + 1)
    header = [h.strip() for h in header]
    for column in ("row_id", "answer"):
        if column not in header:
            raise UserError(f"the sheet's header has no '{column}' column "
                            f"({describe_columns(header)})", path=display, line=skip + 1,
                            field=column)
    index = {name: header.index(name) for name in header}
    annotations = []
    previous = reader.line_num
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise UserError(f"invalid CSV: {exc}", path=display,
                            line=skip + previous + 1) from None
        line_no = skip + previous + 1
        previous = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            raise UserError(f"expected {len(header)} fields, found {len(record)}",
                            path=display, line=line_no)
        values = {name: record[i] for name, i in index.items()}
        annotations.append(_annotation(values, display, line_no, meta.get("dataset"),
                                       default_annotator))
    return Sheet(display, _meta(meta, display), annotations)


def _read_jsonl(content: str, display: str, default_annotator: str,
                limits: LimitsConfig) -> Sheet:
    meta: dict[str, object] = {}
    annotations = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = parse_json_line(line, limits)
        except json.JSONDecodeError as exc:
            raise UserError(f"invalid JSON: {exc.msg} (column {exc.colno})", path=display,
                            line=number) from None
        except ValueError as exc:                         # nested too deeply
            raise UserError(str(exc), path=display, line=number) from None
        if not isinstance(record, dict):
            raise UserError("expected a JSON object", path=display, line=number)
        if JSONL_HEADER_KEY in record:
            meta = {k: v for k, v in record.items() if v is not None}
            continue
        for column in ("row_id", "answer"):
            if column not in record:
                raise UserError(f"the sheet row has no '{column}' key", path=display,
                                line=number, field=column)
        annotations.append(_annotation(record, display, number,
                                       _text(meta.get("dataset")), default_annotator))
    return Sheet(display, _meta(meta, display), annotations)


def _annotation(values: dict[str, Any], display: str, line: int, dataset: str | None,
                default_annotator: str) -> Annotation:
    row_id = _text(values.get("row_id"))
    if row_id is None:
        raise UserError("row_id is empty", path=display, line=line, field="row_id")
    return Annotation(path=display, line=line, dataset=dataset, row_id=row_id,
                      annotator=_text(values.get("annotator")) or default_annotator,
                      answer=_text(values.get("answer")), sha=_text(values.get("sha")))


def _meta(raw: dict[str, Any], display: str) -> SheetMeta:
    def number(key: str) -> int | None:
        value = raw.get(key)
        if value in (None, ""):
            return None
        try:
            return int(str(value))
        except ValueError:
            got = shown(value)
            raise UserError(f"sheet header '{key}' must be a whole number"
                            + (f" (got '{got}')" if got else ""),
                            path=display, field=key) from None
    return SheetMeta(dataset=_text(raw.get("dataset")), seed=number("seed"), n=number("n"),
                     stratify=_text(raw.get("stratify")), population=number("population"))


# --- the configured sheets --------------------------------------------------------------------


def load_annotations(config: Config, eval_datasets: Sequence[str]) -> list[Annotation]:
    """Every annotation of the sheets ``audits.disagreement.annotations`` names, each tied to
    its dataset (the sheet's ``dataset``, else ``audits.disagreement.dataset``, else the only
    eval dataset)."""
    cfg = config.audits.disagreement
    files: list[Path] = []
    key = "audits.disagreement.annotations"
    for pattern in cfg.annotations:
        matched = containment.glob_files(
            pattern, config.root, max_files=config.limits.max_files_per_glob,
            source=config.source, line=config.line_of(key), field=key)
        if not matched:
            raise UserError(f"glob '{pattern}' matches no file", path=config.source,
                            line=config.line_of(key), field=key)
        files.extend(m for m in matched if m not in files)
    out: list[Annotation] = []
    for file in files:
        sheet = read_sheet(file, relative(file, config.root), config.limits)
        name = sheet.meta.dataset or cfg.dataset
        if name is None:
            if len(eval_datasets) != 1:
                raise UserError("the sheet names no dataset and there are several eval "
                                "datasets: add a '# dataset: NAME' line or set "
                                "audits.disagreement.dataset", path=sheet.path)
            name = eval_datasets[0]
        if cfg.dataset and name != cfg.dataset:
            raise UserError(f"the sheet was sampled from {_name(name)} but "
                            f"audits.disagreement.dataset is '{cfg.dataset}'", path=sheet.path,
                            field="dataset")
        if name not in eval_datasets:
            raise UserError(f"{_name(name)} is not an eval dataset of {config.source} (eval datasets: "
                            f"{', '.join(eval_datasets)})", path=sheet.path, field="dataset")
        out.extend(replace(a, dataset=name) for a in sheet.annotations)
    return out


def _name(value: str) -> str:
    """A dataset name read from a sheet, as an error message may quote it."""
    quoted = shown(value)
    return f"'{quoted}'" if quoted else "a dataset not in the config"
