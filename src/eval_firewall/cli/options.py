"""Options several commands share, written once: ``--quiet`` and ``--ray-address``."""

from __future__ import annotations

import click

QUIET = click.option("--quiet", "-q", is_flag=True, help="No progress on standard error.")
RAY_ADDRESS = click.option("--ray-address", default=None, metavar="ADDRESS",
                           help="The Ray cluster for --engine ray. Default: RAY_ADDRESS, else a "
                                "local Ray started for the run on 127.0.0.1.")
