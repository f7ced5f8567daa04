"""The ``eval-firewall`` command. Each subcommand lives in its own module of this package."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..errors import UserError
from ..safeio.terminal import one_line
from ..version import __version__
from . import audit, explain, github, index, init, perturb, sample, selftest, waive


class _Group(click.Group):
    """Turns a UserError into one line on stderr and exit code 2, wherever it is raised."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"eval-firewall: error: {one_line(exc)}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="eval-firewall")
def main() -> None:
    """Audit eval sets against train sets: overlap, provenance, disagreement and invariance.

    Configure the datasets in .eval-firewall.yml at the repository root, then run
    `eval-firewall audit`. Exit codes: 0 pass, 1 findings at or above the fail level,
    2 bad input or usage.
    """


# The one place a subcommand is registered: its module holds it, this list adds it.
for _command in (audit.audit, explain.explain, github.github, index.index, init.init,
                 perturb.perturb, sample.sample, selftest.selftest, waive.waive):
    main.add_command(_command)
