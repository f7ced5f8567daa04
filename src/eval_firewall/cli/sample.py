"""``eval-firewall sample``: a blind annotation sheet of eval rows, without their labels."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import UserError
from ..safeio.paths import write_text
from ..safeio.terminal import one_line

if TYPE_CHECKING:
    from ..rows import RowProblem


@click.command()
@click.option("--dataset", "dataset_name", required=True, metavar="NAME",
              help="The eval dataset to sample (a name from the config).")
@click.option("--n", "n", type=int, default=50, show_default=True,
              help="How many rows to sample (without replacement).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed: the same seed and data give the same sheet.")
@click.option("--stratify", metavar="FIELD",
              help="Sample each value of this record field (dotted path) in proportion to "
                   "its share of the dataset.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The sheet to write: .csv (instructions in # comment lines above the "
                   "header) or .jsonl (instructions in the first line).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists (it may hold "
                                            "annotators' answers).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file. Default: .eval-firewall.yml in the current directory or the "
                   "repository root above it.")
def sample(dataset_name: str, n: int, seed: int, stratify: str | None, output: Path,
           force: bool, config_path: Path | None) -> None:
    """Write a blind annotation sheet of eval rows (no labels).

    The sheet holds N rows sampled without replacement. Each row has a row_id, a content hash
    of the row's text and label (so a later audit can tell when the row changed), an annotator
    column and an empty answer column. The sheet
    records the dataset, seed, n and stratify field, so it can be sampled again from itself.
    Annotators fill the answer column; commit the filled sheets under the path
    audits.disagreement.annotations names.
    """
    from ..audits import RULES
    from ..config import load_config
    from ..datasets import load_dataset
    from ..datasets.check import check_fields
    from ..inputs.annotations import (
        SheetMeta,
        label_choices,
        render_sheet,
        sample_rows,
        sheet_format,
    )

    fmt = sheet_format(output)
    if os.path.lexists(output) and not force:
        raise UserError("the output file exists (it may hold answers); pass --force to "
                        "overwrite it", path=str(output))
    config = load_config(config_path, rules=RULES)
    ds = config.dataset(dataset_name)
    if ds.role != "eval":
        raise UserError(f"'{ds.name}' is a {ds.role} dataset; sample an eval dataset",
                        field="dataset")
    loaded = load_dataset(config, ds, keep_record=bool(stratify))
    check_fields(config, loaded, warn=lambda message: click.echo(
        one_line(f"eval-firewall: warning: {message}"), err=True))
    rows = sample_rows(loaded.rows, n, seed=seed, stratify=stratify)
    meta = SheetMeta(dataset=ds.name, seed=seed, n=n, stratify=stratify,
                     population=len(loaded.rows))
    text = render_sheet(rows, meta, fmt, output.as_posix(),
                        choices=label_choices([r.label for r in loaded.rows]))
    try:
        write_text(output, text, what="the sheet", make_parents=True)
    except OSError as exc:
        raise UserError(f"cannot write the sheet: {exc}", path=str(output)) from None
    _warn_unreadable(loaded.problems)
    click.echo(one_line(f"wrote {len(rows)} of {len(loaded.rows)} rows of {ds.name} to {output} "
                        f"(seed {seed}{f', stratified by {stratify}' if stratify else ''})"),
               err=True)


def _warn_unreadable(problems: Sequence[RowProblem]) -> None:
    """Say on stderr how many rows could not be read, so none was sampled, and where the first is."""
    if problems:
        first = problems[0]
        click.echo(one_line(f"eval-firewall: {sum(p.count for p in problems)} unreadable rows were not "
                            f"sampled (first at {first.path}:{first.line}: {first.message})"),
                   err=True)
