"""``eval-firewall github``: the entrypoint of the GitHub Action's container."""

from __future__ import annotations

import sys

import click

from ..errors import UserError
from ..safeio.terminal import one_line


@click.command()
def github() -> None:
    """Run as the GitHub Action (the container's entrypoint).

    Reads what GitHub gives a container action: the INPUT_* variables (github-token, config,
    fail-on, comment, check-name, report-dir, cache-dir, post, policy, max-limits),
    GITHUB_EVENT_NAME and GITHUB_EVENT_PATH (pull_request, pull_request_target,
    pull_request_review, push, workflow_run),
    GITHUB_REPOSITORY, GITHUB_WORKSPACE, GITHUB_API_URL, GITHUB_SERVER_URL, GITHUB_OUTPUT and
    GITHUB_STEP_SUMMARY. Audits the checkout, writes the reports, posts one sticky comment and
    a check run (a commit status when the token cannot write checks). On a pull request the
    gate's policy is the base commit's config and waivers; a change that loosens it applies
    once someone else approves the head commit in a review.

    Exits 0 when the audit passes, 1 when it fails, 2 on bad input or a GitHub error.
    """
    from ..github.main import run
    from ..github.outputs import command

    try:
        code = run()
    except UserError as exc:
        command("error", f"eval-firewall: {exc}")
        click.echo(f"eval-firewall: error: {one_line(exc)}", err=True)
        sys.exit(2)
    sys.exit(code)
