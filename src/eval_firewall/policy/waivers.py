"""Waivers: reviewed, versioned acceptances of known findings.

A waiver names a finding by its fingerprint (``Finding.fingerprint``, or its short id, the
first 8 characters) and says why it is accepted and who approved it, optionally until when.
Waivers live in ``.eval-firewall-waivers.yml`` next to the config (a YAML list of entries) or
under a ``waivers:`` key of ``.eval-firewall.yml``. A waived finding does not fail the run; a
waiver that has expired or that matches no finding raises ``stale-waiver`` (a warning).

This module is pure: it parses text and applies entries to findings. Reading the files (now
and at the base revision) is the engine's job.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import yaml
from pydantic import ValidationError

from ..config.model import WaiverEntry
from ..errors import UserError
from ..findings import FINGERPRINT_CHARS, SHORT_ID_CHARS, Finding, Severity, Waiver
from ..safeio.yaml import MAX_CONFIG_YAML_NODES, compose_yaml, construct_yaml, yaml_error

WAIVERS_FILE = ".eval-firewall-waivers.yml"
AUDIT = "waivers"
STALE = "stale-waiver"


@dataclass(frozen=True, slots=True)
class Listed:
    """An entry and where it was written."""

    entry: WaiverEntry
    path: str
    line: int | None = None

    @property
    def location(self) -> str:
        """``path:line`` of the entry, or the path alone when its line is unknown."""
        return f"{self.path}:{self.line}" if self.line else self.path


def _lines(node: yaml.Node | None) -> list[tuple[int, dict[str, int], str | None]]:
    """For each item of a top-level YAML list: its line, the line of each of its keys, and its
    fingerprint as written (YAML reads an unquoted 01234567 as the number 342391)."""
    if not isinstance(node, yaml.SequenceNode):
        return []
    out = []
    for item in node.value:
        keys, written = {}, None
        if isinstance(item, yaml.MappingNode):
            keys = {k.value: k.start_mark.line + 1 for k, _ in item.value
                    if isinstance(k, yaml.ScalarNode)}
            written = next((v.value for k, v in item.value if k.value == "fingerprint"
                            and isinstance(v, yaml.ScalarNode) and v.tag.endswith(":int")),
                           None)
        out.append((item.start_mark.line + 1, keys, written))
    return out


def _load_yaml(text: str) -> tuple[yaml.Node | None, object]:
    """The node graph and the data of a YAML document, bounded like the config's (alias
    expansion, nesting): a waiver file comes with the pull request. Raises yaml.YAMLError or
    ValueError."""
    loader = yaml.SafeLoader(text)
    try:
        node = compose_yaml(loader, MAX_CONFIG_YAML_NODES)
        return node, construct_yaml(loader, node)
    finally:
        loader.dispose()


def parse_waivers(text: str, *, source: str) -> list[Listed]:
    """The entries of a waiver file: a YAML list of ``{fingerprint, reason, approved_by,
    expires?}``. Errors name the file, line and field."""
    try:
        node, data = _load_yaml(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise yaml_error(exc, source) from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise UserError("a waiver file is a YAML list of entries (- fingerprint: ...)",
                        path=source, line=1)
    lines = _lines(node)
    out: list[Listed] = []
    for i, raw in enumerate(data):
        line, keys, written = lines[i] if i < len(lines) else (None, {}, None)
        if written is not None and isinstance(raw, dict):
            raw = {**raw, "fingerprint": written}
        out.append(Listed(validate_entry(raw, source=source, line=line, keys=keys,
                                         field=f"[{i}]"), source, line))
    check_duplicates(out)
    return out


def validate_entry(raw: object, *, source: str, line: int | None, keys: dict[str, int],
                   field: str) -> WaiverEntry:
    """``raw`` as a WaiverEntry; a UserError naming the entry's line and key when it is not one."""
    try:
        return WaiverEntry.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else None
        kind = err["type"]
        if kind == "extra_forbidden":
            message = "unknown key"
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "string_type" and name == "fingerprint":
            message = "write the fingerprint in quotes (YAML reads this one as a number)"
        elif kind == "string_pattern_mismatch":
            message = (f"a fingerprint is {SHORT_ID_CHARS} to {FINGERPRINT_CHARS} hex "
                       f"characters (the short id or the full fingerprint of a finding)")
        else:
            message = err["msg"]
        if "input" in err and not isinstance(err["input"], (dict, list)):
            message += f" (got {err['input']!r})"
        where = keys.get(name, line) if name else line
        raise UserError(message, path=source, line=where,
                        field=f"{field}.{name}" if name else field) from None


def check_duplicates(listed: list[Listed]) -> None:
    """Two entries for the same finding (one fingerprint a prefix of the other) are an error."""
    for i, a in enumerate(listed):
        for b in listed[:i]:
            x, y = a.entry.fingerprint, b.entry.fingerprint
            if x.startswith(y) or y.startswith(x):
                raise UserError(f"waiver '{x}' repeats the one at {b.location}", path=a.path,
                                line=a.line, field="fingerprint")


def resolve(fingerprint: str, known: set[str], *, where: Listed | None = None) -> str | None:
    """The full fingerprint a waiver names among ``known``; None when it names none. A short
    id that several findings start with is an error."""
    fingerprint = fingerprint.lower()
    if len(fingerprint) == FINGERPRINT_CHARS:
        return fingerprint if fingerprint in known else None
    matches = sorted(f for f in known if f.startswith(fingerprint))
    if len(matches) > 1:
        raise UserError(f"short id '{fingerprint}' matches {len(matches)} findings "
                        f"({', '.join(matches[:3])}{', ...' if len(matches) > 3 else ''}): "
                        "use the full fingerprint from the JSON report",
                        path=where.path if where else None, line=where.line if where else None,
                        field="fingerprint")
    return matches[0] if matches else None


@dataclass(frozen=True, slots=True)
class Applied:
    waivers: dict[str, Waiver]   # full fingerprint -> the waiver that accepts it
    stale: list[Finding]         # stale-waiver findings
    new: int                     # entries added by the change (with a base)


def apply(findings: list[Finding], listed: list[Listed], *, today: dt.date,
          at_base: set[str] | None = None) -> Applied:
    """Match each waiver to the findings. ``at_base``: the fingerprints written in the waivers
    at the base revision (None without a base): an entry not among them is new."""
    known = {f.fingerprint for f in findings}
    waivers: dict[str, Waiver] = {}
    stale: list[Finding] = []
    new_count = 0
    for item in listed:
        e = item.entry
        full = resolve(e.fingerprint, known, where=item)
        new = at_base is not None and not any(
            e.fingerprint.startswith(b) or (full or "").startswith(b) for b in at_base)
        new_count += new
        expires = e.expires.isoformat() if e.expires else None
        waiver = Waiver(full or e.fingerprint, e.reason, e.approved_by, expires, new)
        why = None
        if e.expires is not None and e.expires < today:
            why = (f"waiver {e.fingerprint} expired on {expires}: the finding it accepted "
                   "counts again; renew it (a later 'expires') or remove it")
        elif full is None:
            why = (f"waiver {e.fingerprint} matches no finding (fixed, or its row or match "
                   "changed): remove it")
        if why is None:
            assert full is not None   # only an entry that matched has no reason to be stale
            waivers[full] = waiver
            continue
        stale.append(Finding(AUDIT, STALE, Severity.WARNING, why, path=item.path,
                             line=item.line, row_id=e.fingerprint,
                             new=at_base is None or new))
    return Applied(waivers, stale, new_count)


def written_fingerprints(text: str) -> set[str]:
    """The fingerprints a waiver file (or a config's ``waivers:``) wrote, leniently: for the
    base revision, whose file is only compared with, never trusted or enforced."""
    try:
        _, data = _load_yaml(text)
    except (yaml.YAMLError, ValueError):
        return set()
    if isinstance(data, dict):
        data = data.get("waivers")
    if not isinstance(data, list):
        return set()
    return {str(item["fingerprint"]).strip().lower() for item in data
            if isinstance(item, dict) and isinstance(item.get("fingerprint"), str)}


def entry_text(fingerprint: str, reason: str, approved_by: str,
               expires: dt.date | None = None) -> str:
    """One entry as YAML text, to append to a waiver file (JSON strings are YAML scalars)."""
    lines = [f"- fingerprint: \"{fingerprint}\"",
             f"  reason: {json.dumps(reason, ensure_ascii=False)}",
             f"  approved_by: {json.dumps(approved_by, ensure_ascii=False)}"]
    if expires is not None:
        lines.append(f"  expires: {expires.isoformat()}")
    return "\n".join(lines) + "\n"
