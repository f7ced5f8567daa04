"""``eval-firewall perturb``: meaning-preserving variants of eval prompts, for a model to answer."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from ..errors import UserError
from ..inputs.perturb import KINDS
from ..safeio.terminal import one_line


def _kinds(values: tuple[str, ...]) -> list[str] | None:
    if not values:
        return None
    kinds = [k.strip() for v in values for k in v.split(",") if k.strip()]
    for kind in kinds:
        if kind not in KINDS:
            raise click.BadParameter(f"unknown kind '{kind}' (kinds: {', '.join(KINDS)})",
                                     param_hint="--kinds")
    return kinds


@click.command()
@click.option("--dataset", "dataset_name", required=True, metavar="NAME",
              help="The eval dataset whose prompts to perturb (a name from the config).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The prompts file to write (.jsonl).")
@click.option("--seed", type=int, help="Random seed. Default: audits.invariance.seed (0).")
@click.option("--kinds", multiple=True, metavar="KIND[,KIND...]",
              help=f"Perturbation kinds ({', '.join(KINDS)}); repeat or separate with "
                   "commas. Default: audits.invariance.kinds (all).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file. Default: .eval-firewall.yml in the current directory or the "
                   "repository root above it.")
def perturb(dataset_name: str, output: Path, seed: int | None, kinds: tuple[str, ...],
            config_path: Path | None) -> None:
    """Write eval prompts and meaning-preserving variants of them.

    One JSON object a line: {"id", "row_id", "kind", "prompt", "sha"}; kind is "original" or
    a perturbation kind. Give every prompt to your model and write {"id": ...,
    "prediction": ...} lines (echo "sha" to have stale predictions caught); point
    audits.invariance.predictions at that file. The same seed and data always give the same
    variants, and the invariance audit rebuilds them with the config's seed and kinds, so use
    the same ones here.
    """
    if output.suffix.lower() != ".jsonl":
        raise UserError("the prompts file must end in .jsonl", path=str(output))
    from ..audits import RULES
    from ..config import load_config
    from ..datasets import load_dataset
    from ..inputs.perturb import ORIGINAL, perturb_rows
    from ..inputs.predictions import write_prompts

    config = load_config(config_path, rules=RULES)
    cfg = config.audits.invariance
    ds = config.dataset(dataset_name)
    if ds.role != "eval":
        raise UserError(f"'{ds.name}' is a {ds.role} dataset; perturb an eval dataset",
                        field="dataset")
    chosen_seed = cfg.seed if seed is None else seed
    variants = perturb_rows(load_dataset(config, ds).rows, seed=chosen_seed,
                            kinds=_kinds(kinds) or cfg.kinds, preambles=cfg.preambles)
    try:
        write_prompts(output, variants)
    except OSError as exc:
        raise UserError(f"cannot write the prompts: {exc}", path=str(output)) from None
    counts = Counter(v.kind for v in variants)
    made = ", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k])
    click.echo(one_line(f"wrote {counts[ORIGINAL]} prompts of {ds.name} and their variants "
                        f"({made or 'none'}) to {output} (seed {chosen_seed})"), err=True)
