"""``eval-firewall explain``: why one eval row was or was not flagged by the overlap audit."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..safeio.terminal import inert, one_line
from .options import QUIET

if TYPE_CHECKING:
    from ..diagnose.explain import Explanation

SHOWN = 160   # characters of a row's text printed
EMPTY = {"exact": "no train row with the same normalized text",
         "near-duplicate": "no train row shares its rare words (no lexical candidate)",
         "paraphrase": "no train row reaches the retrieval floor (no candidate to score)"}


@click.command()
@click.argument("row")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file. Default: .eval-firewall.yml in the current directory or the "
                   "repository root above it.")
@click.option("--top", type=click.IntRange(1, 50), default=3, show_default=True,
              help="How many of the nearest train rows to show per stage.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the explanation as JSON (the evidence objects of the JSON report).")
@QUIET
def explain(row: str, config_path: Path | None, top: int, as_json: bool, quiet: bool) -> None:
    """Explain why the eval row ROW was or was not flagged by the overlap audit.

    ROW is the row's id, or path:line (the path relative to the repository root) when no id
    is configured. Each stage runs for that row against the train rows: exact (same
    normalized text), near-duplicate (lexical similarity against `threshold`) and paraphrase
    (the full-model cosine against the cosine floor `threshold`, the calibrated probability
    against `min_probability`, and the features the probability was computed from). For the
    nearest train rows of each stage it prints the same numbers a finding's `evidence`
    carries in the JSON report, and why a row was not flagged. Exits 0 (flagged or not), 2 on
    an unknown row or bad input.
    """
    from ..audits import RULES
    from ..config import load_config
    from ..diagnose.explain import explain as run
    from ..progress import Progress

    config = load_config(config_path, rules=RULES)
    result = run(config, row, top=top, progress=Progress(enabled=not quiet))
    if as_json:
        click.echo(_json(result))
        return
    _echo(result)


def _json(result: Explanation) -> str:
    """The explanation as JSON: the row, the rule it was flagged by, each stage's evidence."""
    return json.dumps({
        "row": {"dataset": result.row.dataset, "path": result.row.path,
                "line": result.row.line, "row_id": result.row.row_id},
        "rule": result.rule,
        "match": None if result.match is None else result.match.location,
        "stages": {stage: [{"train": n.train.location, "row_id": n.train.row_id,
                            "flagged": n.flagged,
                            "evidence": dataclasses.asdict(n.evidence)} for n in found]
                   for stage, found in result.stages.items()},
        "notes": result.notes}, indent=2, ensure_ascii=False)


def _echo(result: Explanation) -> None:
    """The explanation for a reader: each stage's nearest train rows, their numbers and why."""
    r = result.row
    click.echo(f"eval row {inert(r.row_id)} ({inert(r.dataset)}, {inert(r.location)}): "
               + (f"flagged as {result.rule} of train row {inert(result.match.location)}"
                  if result.match is not None else "not flagged"))
    click.echo(f"  text: {_short(r.text)}")
    for stage, found in result.stages.items():
        click.echo(f"{stage}:")
        if not found:
            click.echo("  " + EMPTY[stage])
        for n in found:
            e = n.evidence
            numbers = [f"similarity {e.similarity:.4f}" if stage != "paraphrase"
                       else f"cosine {e.similarity:.4f} (floor {e.threshold})"]
            if stage == "near-duplicate":
                numbers.append(f"threshold {e.threshold}")
            if e.probability is not None:
                numbers.append(f"probability {e.probability:.4f} "
                               f"(min_probability {e.min_probability})")
            verdict = "FLAGGED" if n.flagged else f"not flagged: {e.not_flagged}"
            click.echo(f"  train {inert(n.train.location)} ({inert(n.train.row_id)}): "
                       + ", ".join(numbers) + f"; {verdict}")
            if e.features:
                click.echo("    features: " + ", ".join(f"{k} {v:g}"
                                                        for k, v in e.features.items()))
            click.echo(f"    text: {_short(n.train.text)}")
    for note in result.notes:
        click.echo(f"note: {note}")


def _short(text: str) -> str:
    line = one_line(text)
    return inert(line if len(line) <= SHOWN else line[:SHOWN] + "…")
