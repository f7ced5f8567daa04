"""``eval-firewall init``: guess a commented ``.eval-firewall.yml`` from the dataset files.

The guessing is plain functions (:func:`find_dataset_files`, :func:`guess_datasets`,
:func:`render_config`); the command only writes the file and says what it guessed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import click

from ..errors import UserError
from ..home import DEFAULT_CACHE
from ..safeio.paths import write_text

MAX_FILES = 20_000        # paths looked at, at most
MAX_SAMPLED = 50          # records read from a dataset's files to guess its fields
SKIPPED_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", "env",
                ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages",
                DEFAULT_CACHE, ".cache", "dist", "build", ".ipynb_checkpoints"}
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
           ".tsv": "tsv", ".parquet": "parquet"}

# Field names by role, most telling first. Compared with a field's last dotted part, lower-cased.
TEXT_FIELDS = ("question", "prompt", "text", "input", "instruction", "query", "problem",
               "sentence", "content", "context", "passage", "review", "document", "utterance",
               "premise", "source", "inputs")
LABEL_FIELDS = ("answer", "label", "canonical_solution", "solution", "output", "target", "gold",
                "answers", "completion", "response", "class", "category", "sentiment",
                "targets", "outputs", "reference", "correct")
# A text field blank in more of the sampled rows than this is "often empty": another field is
# preferred, and if none is better, init says so.
FILLED = 0.9
# Fields that are one item together: the instruction and the input it applies to (CodeAlpaca,
# Alpaca), joined by a newline as the row's text.
JOINED_TEXT = ("instruction", "input")
ID_FIELDS = ("id", "uid", "idx", "guid", "qid", "example_id", "row_id", "question_id", "_id",
             "sample_id", "task_id")
PROVENANCE_FIELDS = {
    "label_source": ("label_source", "label_origin", "labeled_by", "labelled_by",
                     "annotated_by", "annotator", "label_author", "annotation_source",
                     "source_of_label"),
    "verified_by": ("verified_by", "verifier", "reviewed_by", "reviewer", "checked_by",
                    "validated_by", "human_verified"),
    "generator": ("generator", "generated_by", "generator_model", "model", "source_model",
                  "synthetic_model", "created_by_model"),
}
_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass
class Guess:
    """One dataset as guessed: where its files are and which fields mean what."""

    name: str
    role: str
    why: str                                  # the path part that gave the role away
    files: list[str]
    paths: list[str]
    format: str
    text: list[str] = field(default_factory=list)
    label: str | None = None
    id: str | None = None
    provenance: dict[str, str] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- finding the files --------------------------------------------------------------------------


def _format_of(path: str) -> str | None:
    suffixes = [s.lower() for s in PurePosixPath(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return FORMATS.get(suffixes[-1]) if suffixes else None


def find_dataset_files(root: Path) -> list[str]:
    """Dataset-looking files under ``root`` (POSIX, relative): git's list in a repository."""
    listed = _git_files(root)
    if listed is None:
        listed = _walk(root)
    out = []
    for path in listed[:MAX_FILES]:
        parts = PurePosixPath(path).parts
        if any(p in SKIPPED_DIRS or p.startswith(".") for p in parts[:-1]):
            continue
        if _format_of(path) and (root / path).is_file():
            out.append(path)
    return sorted(out)


def _git_files(root: Path) -> list[str] | None:
    try:
        proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                               "--exclude-standard", "--", "."], cwd=root,
                              capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return [p for p in os.fsdecode(proc.stdout).split("\0") if p]


def _walk(root: Path) -> list[str]:
    out: list[str] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        rel = Path(directory).relative_to(root)
        out.extend((rel / f).as_posix() for f in sorted(files))
        if len(out) >= MAX_FILES:
            break
    return out


def role_of(path: str) -> tuple[str, str] | None:
    """("train" | "eval", the name part that says so), from the file name, then its folders."""
    for part in reversed(PurePosixPath(path).parts):
        for token in _TOKEN.findall(part.lower()):
            if token.startswith("train"):
                return "train", part
            if ("eval" in token or token in ("test", "tests", "testing", "dev", "val", "valid",
                                             "validation", "heldout", "holdout")):
                return "eval", part
    return None


# --- guessing the fields ------------------------------------------------------------------------


def sample_records(root: Path, files: list[str], fmt: str) -> list[dict[str, Any]]:
    """Up to MAX_SAMPLED records from the files, with the project's readers; [] if unreadable."""
    from ..datasets.formats import read_records
    from ..datasets.lines import BadRecord

    out: list[dict[str, Any]] = []
    for path in files:
        try:
            for _, record in read_records(root / path, fmt):
                if not isinstance(record, BadRecord):
                    out.append(record)
                if len(out) >= MAX_SAMPLED:
                    return out
        except (UserError, OSError, UnicodeDecodeError, ValueError, EOFError):
            continue
    return out


def _flatten(record: dict[str, Any], prefix: str = "", depth: int = 1) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and depth < 3:
            out.update(_flatten(value, name + ".", depth + 1))
        else:
            out[name] = value
    return out


def _pick(names: tuple[str, ...], fields: list[str], taken: set[str]) -> str | None:
    last = {f: f.rsplit(".", 1)[-1].lower() for f in fields if f not in taken}
    for wanted in names:
        for f, short in last.items():
            if short == wanted:
                return f
    return None


def guess_fields(guess: Guess, records: list[dict[str, Any]]) -> None:
    """Fill in ``guess``'s text, label, id and provenance fields from sampled records, by name."""
    flat = [_flatten(r) for r in records]
    fields: list[str] = list(dict.fromkeys(k for r in flat for k in r))
    guess.fields = fields
    strings = {f: [v for r in flat if isinstance(v := r.get(f), str)] for f in fields}
    texty = [f for f in fields if strings[f] and len(strings[f]) >= len(flat) / 2]
    taken: set[str] = set()
    guess.text = _text_fields(texty, strings, flat)
    if guess.text:
        taken.update(guess.text)
        filled = _filled(guess.text, flat)
        if filled < FILLED:
            guess.warnings.append(
                f"the text field{'s' if len(guess.text) > 1 else ''} "
                f"{', '.join(guess.text)} {'are' if len(guess.text) > 1 else 'is'} empty in "
                f"{round(100 * (1 - filled))}% of the sampled rows; such rows are "
                "'empty-text' findings: choose a field that is always filled")
    guess.label = _pick(LABEL_FIELDS, fields, taken)
    if guess.label:
        taken.add(guess.label)
    ident = _pick(ID_FIELDS, fields, taken)
    if ident:
        values = [json.dumps(r.get(ident), sort_keys=True) for r in flat if ident in r]
        if len(set(values)) == len(values) == len(flat):
            guess.id = ident
            taken.add(ident)
    for key, names in PROVENANCE_FIELDS.items():
        found = _pick(names, fields, taken)
        if found:
            guess.provenance[key] = found
            taken.add(found)


def _filled(text: list[str], flat: list[dict[str, object]]) -> float:
    """The share of records whose text fields, joined, are not blank."""
    if not flat:
        return 0.0
    full = sum(1 for r in flat
               if any(isinstance(v := r.get(f), str) and v.strip() for f in text))
    return full / len(flat)


def _text_fields(texty: list[str], strings: dict[str, list[str]],
                 flat: list[dict[str, object]]) -> list[str]:
    """The text field(s): instruction and input together when both are there; else the first
    text-named field (TEXT_FIELDS order) that is filled in most rows; else the text-named or
    string field whose values are longest, counting blank ones as empty."""
    def short(f: str) -> str:
        return f.rsplit(".", 1)[-1].lower()

    def mean_length(f: str) -> float:
        return sum(len(v.strip()) for v in strings[f]) / max(1, len(flat))

    joined = [next((f for f in texty if short(f) == name), None) for name in JOINED_TEXT]
    if all(joined):
        return [f for f in joined if f]
    named = [f for name in TEXT_FIELDS for f in texty if short(f) == name]
    full = [f for f in named if _filled([f], flat) >= FILLED]
    if full:
        return [full[0]]
    pool = named or texty
    return [max(pool, key=mean_length)] if pool else []


def guess_datasets(root: Path, files: list[str]) -> tuple[list[Guess], list[str]]:
    """Datasets guessed from the files, and the files left out (with why)."""
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    why: dict[tuple[str, str, str], str] = {}
    skipped: list[str] = []
    for path in files:
        named = role_of(path)
        if named is None:
            skipped.append(f"{path}: no train, eval, test or dev in its path")
            continue
        key = (PurePosixPath(path).parent.as_posix(), _format_of(path) or "", named[0])
        groups[key].append(path)
        why.setdefault(key, named[1])
    guesses: list[Guess] = []
    names: set[str] = set()
    for (directory, fmt, role), paths in sorted(groups.items(),
                                                 key=lambda item: (item[0][2] != "train", item[0])):
        name = PurePosixPath(paths[0]).name
        ext = name[name.index("."):] if "." in name else ""
        ext = ext if _format_of("x" + ext) else PurePosixPath(paths[0]).suffix
        globs = paths
        if _same_files(root, directory, ext, paths):
            globs = [f"{directory}/*{ext}" if directory != "." else f"*{ext}"]
        guess = Guess(_unique(_name_of(paths, directory), names), role,
                      why[directory, fmt, role], paths, globs, fmt)
        guess_fields(guess, sample_records(root, paths, fmt))
        if not guess.text:
            skipped.extend(f"{p}: no text field found" for p in paths)
            continue
        guesses.append(guess)
    return guesses, skipped


def _same_files(root: Path, directory: str, ext: str, paths: list[str]) -> bool:
    """True when ``directory/*ext`` matches exactly ``paths``: the glob is then the config."""
    folder = root / directory
    matched = {(PurePosixPath(directory) / p.name).as_posix()
               for p in folder.glob(f"*{ext}") if p.is_file()}
    return matched == set(paths)


def _name_of(paths: list[str], directory: str) -> str:
    """The folder's name for several files; the file's name without extension for one."""
    base = PurePosixPath(directory).name if len(paths) > 1 else PurePosixPath(paths[0]).name
    base = base.split(".")[0] if len(paths) == 1 else base
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "data"


def _unique(name: str, taken: set[str]) -> str:
    out, n = name, 2
    while out in taken:
        out, n = f"{name}-{n}", n + 1
    taken.add(out)
    return out


# --- writing the config -------------------------------------------------------------------------


def _q(value: str | None) -> str:
    """A YAML scalar: JSON's double-quoted strings are valid YAML."""
    return json.dumps(value, ensure_ascii=False)


def render_config(guesses: list[Guess]) -> str:
    """The commented YAML. Field names come from the data: quoted, and comments made inert."""
    from ..config.schema import schema_url
    from ..report.text import one_line

    out = [f"# yaml-language-server: $schema={schema_url()}",
           "# eval-firewall configuration, guessed by `eval-firewall init` from the dataset files",
           "# it found. Check each guess; every key is described in the configuration reference.",
           "datasets:"]
    for g in guesses:
        files = f"{len(g.files)} file{'s' if len(g.files) != 1 else ''}"
        out += [f"  - name: {_q(g.name)}",
                f"    role: {g.role}  # train | eval; guessed from {_q(g.why)}",
                f"    paths: [{', '.join(map(_q, g.paths))}]  # {files}; globs, relative to "
                "this file",
                f"    text: [{', '.join(map(_q, g.text))}]  # compared across datasets by the "
                "overlap audit" + ("; joined by a newline" if len(g.text) > 1 else "")]
        out += [f"    # warning: {one_line(w, 200)}" for w in g.warnings]
        if g.label:
            out.append(f"    label: {_q(g.label)}  # the gold answer")
        else:
            out.append("    # label: ...  # no label-like field found (answer, label, target...)")
        if g.id:
            out.append(f"    id: {_q(g.id)}  # a unique row id")
        if g.provenance:
            out.append("    provenance:  # who wrote or checked each row and label")
            out += [f"      {k}: {_q(v)}" for k, v in g.provenance.items()]
        else:
            out.append("    # provenance: {label_source: ..., verified_by: ..., generator: ...}")
        out.append(f"    # fields found: {one_line(', '.join(g.fields), 200)}")
    out += ["audits:",
            "  overlap: {}       # exact, near-duplicate and paraphrase copies of train rows",
            "  provenance: {}    # model-written or unverified eval labels",
            "  # disagreement: {annotations: \"annotations/*.csv\"}  # blind human answers "
            "(eval-firewall sample)",
            "  # invariance: {predictions: predictions.jsonl}      # your model's answers "
            "(eval-firewall perturb)",
            "fail_on: error      # error | warning | notice | never", ""]
    return "\n".join(out)


@click.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default=Path(".eval-firewall.yml"), show_default=True,
              help="The config file to write. Dataset files are looked for in its folder and "
                   "below (git's file list in a repository).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def init(output: Path, force: bool) -> None:
    """Guess a commented .eval-firewall.yml from the dataset files here.

    Looks for JSONL, JSON, CSV, TSV and Parquet files whose path names train, eval, test or dev;
    reads a few rows of each to guess the text, label, id and provenance fields; writes the
    config and prints what it guessed. Check the guesses, then run `eval-firewall audit`.
    """
    from ..config import parse_config

    if os.path.lexists(output) and not force:
        raise UserError("the config file exists; pass --force to overwrite it", path=str(output))
    root = output.resolve().parent
    if not root.is_dir():
        raise UserError("no such folder", path=str(output.parent))
    files = find_dataset_files(root)
    guesses, skipped = guess_datasets(root, files)
    if not any(g.role == "eval" for g in guesses):
        raise UserError(f"no eval dataset found among {len(files)} dataset files in {root}",
                        hint="name eval files or their folder with eval, test or dev")
    text = render_config(guesses)
    parse_config(text, source=str(output), root=root)   # what it writes must load
    try:
        write_text(output, text, what="the config")
    except OSError as exc:
        raise UserError(f"cannot write the config: {exc.strerror or exc}",
                        path=str(output)) from None
    from ..report.text import one_line

    click.echo(f"Found {len(files)} dataset file{'s' if len(files) != 1 else ''}; "
               f"guessed {len(guesses)} dataset{'s' if len(guesses) != 1 else ''}:")
    for g in guesses:
        fields = [f"text: {' + '.join(g.text)}"] + ([f"label: {g.label}"] if g.label else []) + (
            [f"id: {g.id}"] if g.id else []) + [f"{k}: {v}" for k, v in g.provenance.items()]
        click.echo("  " + one_line(f"{g.name} ({g.role}, from {g.why!r}): {', '.join(g.paths)}"))
        click.echo("      " + one_line("; ".join(fields)))
        for warning in g.warnings:
            click.echo("      warning: " + one_line(warning))
    for line in skipped:
        click.echo("  skipped " + one_line(line))
    click.echo(f"Wrote {output}. Check the guesses, then run: eval-firewall audit")
