"""``eval-firewall waive``: accept known findings by appending entries to the waiver file."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import UserError
from ..findings import FINGERPRINT_CHARS, SHORT_ID_CHARS
from ..home import DEFAULT_CACHE
from ..safeio.paths import write_text

if TYPE_CHECKING:
    from ..config import Config

HEADER = """\
# Waivers: findings accepted after review (eval-firewall waive FINGERPRINT --reason ... --by ...).
# A waived finding does not fail the audit; an expired waiver, or one that matches no finding,
# raises a stale-waiver warning. See docs/waivers.md.
"""
_HEX = re.compile(rf"^[0-9a-f]{{{SHORT_ID_CHARS},{FINGERPRINT_CHARS}}}$")


def _known_from_report(path: Path) -> set[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(f["fingerprint"]) for f in data["findings"]}
    except OSError as exc:
        raise UserError(f"cannot read the report: {exc.strerror or exc}", path=str(path)) from None
    except (ValueError, KeyError, TypeError):
        raise UserError("not an eval-firewall JSON report (eval-firewall audit --format json)",
                        path=str(path)) from None


@click.command()
@click.argument("fingerprints", nargs=-1, required=True, metavar="FINGERPRINT...")
@click.option("--reason", required=True, help="Why the finding is accepted (required).")
@click.option("--by", "approved_by", required=True, help="Who approved the waiver (required).")
@click.option("--expires", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Last day the waiver holds; after it the finding counts again and a "
                   "stale-waiver warning says so.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file. Default: .eval-firewall.yml in the current directory or the "
                   "repository root above it. The waiver file is next to it.")
@click.option("--report", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="JSON report (eval-firewall audit --format json) to resolve short ids "
                   "against. Without it, a short id runs the audit to find its finding; a "
                   "full fingerprint needs neither.")
def waive(fingerprints: tuple[str, ...], reason: str, approved_by: str, expires: dt.datetime | None,
          config_path: Path | None, report: Path | None) -> None:
    """Waive findings: append an entry per FINGERPRINT to .eval-firewall-waivers.yml.

    FINGERPRINT is a finding's full fingerprint (JSON report `fingerprint`, SARIF
    partialFingerprints) or its 8-character short id (Markdown report). The file is appended
    to, never rewritten; commit it so the waiver is reviewed with the pull request.
    """
    from ..audits import RULES
    from ..config import load_config
    from ..engine import load_waivers, waiver_file
    from ..policy.waivers import entry_text, parse_waivers

    config = load_config(config_path, rules=RULES)
    path, display = waiver_file(config)
    listed = load_waivers(config)
    wanted = []
    for raw in fingerprints:
        fp = raw.strip().lower()
        if not _HEX.match(fp):
            raise UserError(f"'{raw}' is not a fingerprint ({SHORT_ID_CHARS} to "
                            f"{FINGERPRINT_CHARS} hex characters)", field="FINGERPRINT")
        wanted.append(fp)
    if any(len(fp) < FINGERPRINT_CHARS for fp in wanted):
        wanted = _resolve_short_ids(wanted, config, report)
    for i, fp in enumerate(wanted):
        if fp in wanted[:i]:
            raise UserError(f"'{fp}' is given twice", field="FINGERPRINT")
        for item in listed:
            if fp.startswith(item.entry.fingerprint):
                raise UserError(f"'{fp}' is already waived at {item.location}",
                                field="FINGERPRINT")
    when = expires.date() if expires else None
    added = "".join(entry_text(fp, reason, approved_by, when) for fp in wanted)
    exists = path.is_file()
    before = path.read_text(encoding="utf-8") if exists else ""
    text = ("" if not before or before.endswith("\n") else "\n") + added if exists \
        else HEADER + added
    parse_waivers(before + text, source=display)   # still a valid waiver file once appended
    try:
        # Appended (comments stay as written), never through a committed link.
        write_text(path, text, what="the waiver file", append=True)
    except OSError as exc:
        raise UserError(f"cannot write the waiver file: {exc.strerror or exc}",
                        path=display) from None
    for fp in wanted:
        click.echo(f"waived {fp} in {display}")


def _resolve_short_ids(wanted: list[str], config: Config, report: Path | None) -> list[str]:
    """``wanted`` with each short id replaced by the full fingerprint it names, looked up in
    ``report`` or, without one, in a run of the audit."""
    from ..engine import run_audits
    from ..policy.waivers import resolve
    from ..progress import Progress

    if report is not None:
        known = _known_from_report(report)
    else:
        click.echo("resolving short ids: running the audit (pass --report FILE to use a "
                   "JSON report instead)", err=True)
        known = {f.fingerprint for f in run_audits(config, progress=Progress(enabled=True),
                                                   cache_dir=Path(DEFAULT_CACHE))
                 .findings}
    resolved = []
    for fp in wanted:
        full = fp if len(fp) == FINGERPRINT_CHARS else resolve(fp, known)
        if full is None:
            raise UserError(f"no finding has the short id '{fp}'", field="FINGERPRINT")
        resolved.append(full)
    return resolved
