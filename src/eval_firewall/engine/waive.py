"""Waivers: the waiver file and the config's ``waivers:`` key read, and applied to a run's
findings (the ``waivers`` result: stale waivers, and how many findings were waived)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from ..config import MAX_CONFIG_BYTES, Config
from ..errors import UserError
from ..findings import AuditResult, Stat
from ..incremental.attribution import waivers_at_base
from ..incremental.changes import Changes
from ..policy import waivers
from ..rules import Rule
from ..safeio.paths import check_file, repository_root
from .severity import apply_severity


def waiver_file(config: Config) -> tuple[Path, str]:
    """The waiver file next to the config: its path and its name in messages."""
    display = (Path(config.source).parent / waivers.WAIVERS_FILE).as_posix()
    return config.root / display, display


def _read_waiver_file(config: Config, path: Path, display: str) -> str:
    """The waiver file's text: a file the pull request may have committed, so it must be inside
    the repository (not a link out of it, nor into .git/) and no larger than a config."""
    check_file(path, repository_root(config.root), source=display, line=None,
               field="waiver file", display=display)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise UserError(f"the waiver file is larger than {MAX_CONFIG_BYTES:,} bytes",
                            path=display)
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8"
        raise UserError(f"cannot read the waiver file: {why}", path=display) from None


def load_waivers(config: Config) -> list[waivers.Listed]:
    """The waiver file's entries, then those of the config's ``waivers:`` key."""
    path, display = waiver_file(config)
    listed = []
    if path.is_file():
        listed = waivers.parse_waivers(_read_waiver_file(config, path, display), source=display)
    listed += [waivers.Listed(e, config.source) for e in config.waivers]
    waivers.check_duplicates(listed)
    return listed


def _waive(config: Config, results: list[AuditResult], changes: Changes | None,
           rules: Mapping[str, Rule], listed: list[waivers.Listed] | None = None
           ) -> list[AuditResult]:
    """``results`` with their waived findings marked, then the ``waivers`` result (stale
    waivers, counts); ``results`` as they are without waivers. ``listed``: the waivers to apply
    (default: the config's, :func:`load_waivers`)."""
    listed = load_waivers(config) if listed is None else listed
    if not listed:
        return list(results)
    findings = [f for r in results for f in r.findings]
    at_base = (waivers_at_base(config, changes, [waiver_file(config)[1], config.source])
               if changes is not None else None)
    applied = waivers.apply(findings, listed, today=datetime.now(timezone.utc).date(),
                            at_base=at_base)
    marked = [replace(r, findings=[replace(f, waived=applied.waivers[f.fingerprint])
                                   if f.fingerprint in applied.waivers else f
                                   for f in r.findings]) for r in results]
    waived = sum(1 for r in marked for f in r.findings if f.waived is not None)
    stats = [Stat("waivers", len(listed)), Stat("findings waived", waived),
             Stat("stale waivers", len(applied.stale))]
    if changes is not None:
        stats.append(Stat("waivers added by this change", applied.new))
    result = AuditResult(waivers.AUDIT, "Waivers", applied.stale, stats)
    return [*marked, apply_severity(config, result, rules)]
