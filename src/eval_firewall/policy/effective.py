"""What a run applies of a pull request's policy changes, and the findings of those it does
not. Pure: the base's and the head's parsed config and waivers, the diff, the approvals in.

Tightenings apply at once; a loosening applies only when approved (or when the head's policy is
trusted: a push, ``--trust-head-policy``). A loosening still pending is reverted to the base's
value and reported as a ``policy-change`` finding, which fails the run by itself.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from ..config import Config, LimitsConfig
from ..errors import UserError, validation_error
from ..findings import AuditResult, Finding, PolicyChange, Report, Severity, Stat
from ..rules import POLICY_CHANGE
from .diff import pair_waivers, show, waiver_change
from .waivers import Listed

AUDIT = "policy"
TITLE = "Gate policy"
# The keys a trusted policy file (the action's ``policy`` input) may set.
OVERRIDABLE = ("fail_on", "fail_on_existing", "invalid_rows", "severity", "audits", "limits")


@dataclass(frozen=True, slots=True)
class Approvals:
    """Who approved the changes of each file (the config, the waiver file), by its path as
    the policy diff names it; and, for a file no one has, why."""

    by_file: Mapping[str, str] = field(default_factory=dict)
    why_not: Mapping[str, str] = field(default_factory=dict)


def decide(changes: Sequence[PolicyChange], approvals: Approvals | None, *,
           trusted: bool = False) -> list[PolicyChange]:
    """Each change with its status: tightenings "applied"; loosenings "trusted" (``trusted``),
    "approved" (by the file's approver) or "pending"."""
    out = []
    for c in changes:
        if c.direction == "tighten":
            out.append(replace(c, status="applied"))
        elif trusted:
            out.append(replace(c, status="trusted"))
        elif approvals is not None and c.path in approvals.by_file:
            out.append(replace(c, status="approved", reviewer=approvals.by_file[c.path]))
        else:
            out.append(replace(c, status="pending"))
    return out


def _get(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return copy.deepcopy(data)


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        data = data.get(part)         # type: ignore[assignment]
        if not isinstance(data, dict):
            return                    # its parent was reverted as a whole
    data[last] = value


def _dataset(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((d for d in data["datasets"] if d["name"] == name), None)


def effective_config(base: Config, head: Config, decided: Sequence[PolicyChange]) -> Config:
    """The head's config with every pending loosening set back to the base's value (a
    removed dataset put back, a new one with remote paths left out); its waivers are passed
    to the run separately."""
    data = head.model_dump()
    old = base.model_dump()
    for c in decided:
        if c.status != "pending" or c.key.startswith("waivers["):
            continue
        if c.key.startswith("severity."):
            rule = c.key[len("severity."):]
            if rule in base.severity:
                data["severity"][rule] = base.severity[rule]
            else:
                data["severity"].pop(rule, None)
        elif c.key.startswith("datasets["):
            name, _, rest = c.key[len("datasets["):].partition("]")
            rest = rest.lstrip(".")
            before, now = _dataset(old, name), _dataset(data, name)
            if before is None:
                if not rest and now is not None:    # a new dataset pending (a remote one)
                    data["datasets"].remove(now)
                continue
            if now is None:
                data["datasets"].append(copy.deepcopy(before))
            elif rest:
                _set(now, rest, _get(before, rest))
        else:
            _set(data, c.key, _get(old, c.key))
    data["audits"]["overlap"]["distribution"] = data["audits"]["distribution"]
    data["waivers"] = []
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:        # e.g. a name the base's config does not know
        raise validation_error(exc, path=head.source, prefix="the base's policy and this "
                               "change's config do not combine: ") from None
    config._key_lines = dict(head._key_lines)
    return config


def effective_waivers(base: list[Listed], head: list[Listed],
                      decided: Sequence[PolicyChange]) -> list[Listed]:
    """The base's waivers with the applied changes: removed or shortened ones at once, added
    or extended ones once approved."""
    applied = {c.key for c in decided if c.key.startswith("waivers[") and c.status != "pending"}
    out: list[Listed] = []
    for b, h in pair_waivers(base, head):
        change = waiver_change(b, h)
        chosen = h if change is None or change.key in applied else b
        if chosen is not None:
            out.append(chosen)
    return out


def cap_limits(config: Config, ceiling: Mapping[str, int], why: str = "max-limits"
               ) -> tuple[Config, list[str]]:
    """The config with each limit at most ``ceiling``'s (the action's ``max-limits``), and a
    note for each one capped (saying ``why``)."""
    limits = config.limits.model_dump()
    notes = []
    for key, cap in ceiling.items():
        if limits[key] > cap:
            notes.append(f"limits.{key} {show('limits.' + key, limits[key])} is capped at "
                         f"{show('limits.' + key, cap)} ({why})")
            limits[key] = cap
    if not notes:
        return config, []
    return config.model_copy(update={"limits": LimitsConfig.model_validate(limits)}), notes


def _merge(into: dict[str, Any], over: Mapping[str, Any]) -> None:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def overlay(config: Config, overrides: Mapping[str, Any], source: str) -> Config:
    """The config with a trusted policy file's keys laid over it (they win, whatever the
    config says). Errors name the policy file."""
    for key in overrides:
        if key not in OVERRIDABLE:
            raise UserError("a policy file sets only " + ", ".join(OVERRIDABLE),
                            path=source, field=str(key))
    data = config.model_dump()
    _merge(data, overrides)
    if isinstance(overrides.get("audits"), Mapping) and "distribution" in overrides["audits"]:
        data["audits"]["overlap"]["distribution"] = data["audits"]["distribution"]
    try:
        out = Config.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, path=source) from None
    out._key_lines = dict(config._key_lines)
    return out


def pending(decided: Sequence[PolicyChange]) -> list[PolicyChange]:
    """The loosenings not applied."""
    return [c for c in decided if c.status == "pending"]


def result(decided: Sequence[PolicyChange], approvals: Approvals | None = None) -> AuditResult:
    """The policy's part of the report: a ``policy-change`` finding per pending loosening."""
    why = approvals.why_not if approvals is not None else {}
    findings = [
        Finding(AUDIT, POLICY_CHANGE.id, Severity.ERROR,
                f"This pull request relaxes the gate: {c.key} {c.before} → {c.after}, "
                f"{c.location} — pending approval"
                + (f" ({why[c.path]})" if c.path in why else ""),
                path=c.path, line=c.line, row_id=c.key, new=True)
        for c in pending(decided)]
    by_status = {s: sum(1 for c in decided if c.status == s)
                 for s in ("pending", "approved", "trusted", "applied")}
    stats = [Stat("changes loosening the gate, pending approval", by_status["pending"]),
             Stat("loosenings approved in a review", by_status["approved"]),
             Stat("loosenings applied as trusted", by_status["trusted"]),
             Stat("tightenings applied", by_status["applied"])]
    return AuditResult(AUDIT, TITLE, findings, stats)


def attach(report: Report, outcome: AuditResult, decided: Sequence[PolicyChange],
           new_policy: bool) -> Report:
    """The report with the policy's result and changes, each approved waiver marked with its
    reviewer."""
    reviewers = {c.key[len("waivers["):-1]: c.reviewer for c in decided
                 if c.key.startswith("waivers[") and c.reviewer}

    def mark(f: Finding) -> Finding:
        if f.waived is None:
            return f
        who = next((r for fp, r in reviewers.items() if f.waived.fingerprint.startswith(fp)),
                   None)
        return f if who is None else replace(f, waived=replace(f.waived, reviewer=who))

    audits = [replace(a, findings=[mark(f) for f in a.findings]) for a in report.audits]
    if decided or new_policy:
        audits.append(outcome)
    return replace(report, audits=audits, policy=list(decided), new_policy=new_policy)
