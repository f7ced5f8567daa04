"""``eval-firewall audit``: run the audits and print the report."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

import click

from ..errors import UserError
from ..home import DEFAULT_CACHE
from ..report import FORMATS
from ..safeio.paths import write_text
from .options import QUIET, RAY_ADDRESS


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file. Default: .eval-firewall.yml in the current directory or the "
                   "repository root above it.")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Report format. Default: text on a terminal; with --output, from the file's "
                   "extension (.json json, .sarif sarif, .txt text, otherwise markdown); "
                   "markdown when standard output is a pipe or a file.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this file instead of standard output.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "notice", "never"]),
              help="Lowest severity that fails the run (exit 1). Default: fail_on from the "
                   "config, which defaults to error.")
@click.option("--base", metavar="REV",
              help="Git revision to compare with (e.g. origin/main): rows added or changed "
                   "since REV are the new work, and each finding says whether it is new. By "
                   "default only new findings fail the run (fail_on_existing: false).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path(DEFAULT_CACHE), show_default=True,
              help="Cache of expensive work (embeddings, indexes), relative to the current "
                   "directory; persist it between CI runs.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option("--allow-command", is_flag=True,
              help="Run the prediction command named by audits.invariance.command. Only for a "
                   "configuration you trust: it runs code. Without it, the invariance audit "
                   "reads audits.invariance.predictions.")
@click.option("--trust-head-policy", is_flag=True,
              help="With --base: apply this checkout's config and waiver changes even where "
                   "they loosen the gate (they are still listed). Without it, the policy is "
                   "REV's and a loosening is pending, failing the run, as in a pull request.")
@click.option("--model-path", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Load the semantic model from this directory (a model you trust). The "
                   "config itself names only hub ids, loaded from the local cache.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
              show_default=True,
              help="Where the train index's shards are searched: in this process, or one Ray "
                   "task per shard (needs 'eval-firewall[ray]'); the findings are the same.")
@RAY_ADDRESS
@QUIET
def audit(config_path: Path | None, fmt: str, output: Path | None, fail_on: str | None,
          base: str | None, cache_dir: Path, no_cache: bool, allow_command: bool,
          trust_head_policy: bool, model_path: Path | None, engine: str,
          ray_address: str | None, quiet: bool) -> None:
    """Audit the configured datasets and print a report.

    With --base, the gate's policy is REV's config and waiver file: a change of them that
    loosens the gate is listed, not applied, and fails the run (docs: Policy and approval,
    docs/action/policy.md).

    Exits 0 when the audit passes, 1 when there are findings at or above the fail level,
    and 2 on bad input (config, data files) or usage.
    """
    # Imported here, not at the top: `eval-firewall --help` must not load the engine.
    from ..audits import RULES
    from ..config import load_config, with_model_path
    from ..engine import run_audits
    from ..policy.load import gate
    from ..progress import Progress
    from ..report import render
    from ..search.shards import open_executor

    if engine == "ray" and no_cache:
        raise click.UsageError("--engine ray searches the train index, which --no-cache turns off")
    policy = gate(load_config(config_path, rules=RULES), base, rules=RULES,
                  trust_head=trust_head_policy)
    config = policy.config
    if fail_on:
        config = config.model_copy(update={"fail_on": fail_on})
    if model_path is not None:
        config = with_model_path(config, model_path)
    with open_executor(engine, ray_address) as executor:
        report = run_audits(config, progress=Progress(enabled=not quiet), base=base,
                            cache_dir=None if no_cache else cache_dir,
                            allow_commands=allow_command, waivers=policy.waivers,
                            executor=executor)
    report = policy.finish(report, RULES)
    fmt = fmt or default_format(output, sys.stdout)
    text = render(report, fmt, color=fmt == "text" and output is None and wants_color(sys.stdout))
    if output:
        try:
            write_text(output, text, what="the report", make_parents=True)
        except OSError as exc:
            raise UserError(f"cannot write the report: {exc.strerror or exc}",
                            path=str(output)) from None
    else:
        click.echo(text, nl=False)
    sys.exit(0 if report.status == "pass" else 1)


EXTENSION_FORMATS = {".json": "json", ".sarif": "sarif", ".txt": "text"}


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def default_format(output: Path | None, stdout: TextIO) -> str:
    """Text on a terminal; for a file, by its extension; markdown otherwise."""
    if output is not None:
        return EXTENSION_FORMATS.get(output.suffix.lower(), "markdown")
    return "text" if _isatty(stdout) else "markdown"


def wants_color(stream: TextIO) -> bool:
    """ANSI colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return _isatty(stream) and not os.environ.get("NO_COLOR")
