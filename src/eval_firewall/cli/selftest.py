"""``eval-firewall selftest``: plant changed copies of eval rows and see what the audit finds."""

from __future__ import annotations

from pathlib import Path

import click

from .options import QUIET


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file. Default: .eval-firewall.yml in the current directory or the "
                   "repository root above it.")
@click.option("--eval-rows", type=click.IntRange(3), default=200, show_default=True,
              help="Eval rows sampled (two thirds planted, one third kept clean).")
@click.option("--train-rows", type=click.IntRange(1), default=5000, show_default=True,
              help="Train rows sampled into the scratch train set.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed: the same seed and data give the same samples and copies.")
@QUIET
def selftest(config_path: Path | None, eval_rows: int, train_rows: int, seed: int,
             quiet: bool) -> None:
    """Measure what the overlap audit catches on your own data.

    Samples eval rows and train rows, plants changed copies of two thirds of the sampled eval
    rows into a scratch copy of the train sample (in a temporary directory: nothing in the
    repository is written), and runs the real overlap audit with your overlap settings before
    and after planting. Prints the recall per kind of copy (exact, re-wrapped, case and
    punctuation, Unicode tricks, inside a long document with and without the answer,
    truncated, sentences shuffled, and the invariance audit's rewordings) and how many of the
    clean rows were flagged. Rows flagged before planting are real overlaps in your data:
    they are counted apart. Exits 0, or 2 on bad input.
    """
    from ..audits import RULES
    from ..config import load_config
    from ..diagnose.selftest import selftest as run
    from ..progress import Progress

    config = load_config(config_path, rules=RULES)
    result = run(config, eval_rows=eval_rows, train_rows=train_rows, seed=seed,
                 progress=Progress(enabled=not quiet))
    click.echo(f"selftest: {result.eval_rows} eval rows sampled against {result.train_rows} "
               "train rows (scratch copy)")
    click.echo("")
    click.echo("| copy planted in the train rows | planted | found | recall |")
    click.echo("|---|---|---|---|")
    for k in result.kinds:
        recall = "-" if k.recall is None else f"{k.recall:.0%}"
        click.echo(f"| {k.kind} | {k.planted} | {k.found} | {recall} |")
    click.echo("")
    share = f" ({result.clean_flagged / result.clean:.1%})" if result.clean else ""
    click.echo(f"clean rows flagged: {result.clean_flagged} of {result.clean}{share}")
    if result.already_flagged:
        click.echo(f"already flagged before planting (real overlaps in your data, left out): "
                   f"{result.already_flagged}")
