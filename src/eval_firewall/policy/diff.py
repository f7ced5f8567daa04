"""The policy diff: which of a pull request's config and waiver changes loosen the gate, and
which tighten it. Pure: two parsed configs (or two waiver lists) in, changes out.

A key with an order (a severity, ``fail_on``, a threshold, a limit, ``enabled``) tightens when
it moves towards failing more; every other change of a key counts as loosening (a key with no
order, such as ``model``, ``scoring``, ``seed``, ``kinds``, ``preambles``, ``predictions``, or a
dataset's ``text`` field, can hide a leak as well as reveal one). A new dataset tightens (more is
audited); a removed one, or one whose ``role`` changes, loosens. A remote location (a train URL,
``index.location``) a pull request adds or changes loosens: the run must not fetch a URL of its
choosing; ``index.location`` has no order, so removing it loosens too. A waiver added, or
extended (a later ``expires``, or none), loosens; one removed or shortened tightens.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ByteSize

from ..config import Config
from ..findings import PolicyChange, Severity
from ..rules import Rule
from .waivers import Listed

Order = Literal["higher", "lower", "true", "false", "severity", "fail_on", "fewer", "more"]

# Keys with an order, by pattern (``*`` also matches dots): how they tighten the gate.
# "higher"/"lower": a higher/lower value fails more; "true"/"false": that value fails more;
# "severity": error > warning > notice > off; "fail_on": notice > warning > error > never;
# "fewer"/"more": a list whose items are fewer/more fails more (a subset / superset).
ORDERS: dict[str, Order] = {
    "fail_on": "fail_on",
    "fail_on_existing": "true",
    "invalid_rows": "severity",
    "severity.*": "severity",
    "audits.*.enabled": "true",
    "audits.overlap.near_duplicate.threshold": "lower",
    "audits.overlap.near_duplicate.within_eval": "true",
    "audits.overlap.near_duplicate.candidates": "higher",
    "audits.overlap.semantic.threshold": "lower",
    "audits.overlap.semantic.min_probability": "lower",
    "audits.overlap.semantic.candidates": "higher",
    "audits.distribution.severity": "severity",
    "audits.distribution.max_auc": "lower",
    "audits.distribution.min_rows": "lower",
    "audits.provenance.human_label_sources": "fewer",
    "audits.provenance.allow_generated_eval": "false",
    "audits.provenance.missing": "severity",
    "audits.provenance.missing_per_row": "true",
    "audits.disagreement.max_disagreement": "lower",
    "audits.disagreement.tolerance": "lower",
    "audits.disagreement.fuzzy_threshold": "higher",
    "audits.invariance.max_flip_rate": "lower",
    "limits.*": "lower",
    "datasets[*].paths": "more",
}
SEVERITY_RANK = {"off": 0, "notice": 1, "warning": 2, "error": 3}
FAIL_ON_RANK = {"never": 0, "error": 1, "warning": 2, "notice": 3}
# Not compared: the alias of audits.distribution (compared there), what load_config sets, and
# the waivers (compared by diff_waivers), datasets and severities (compared by name below).
SKIPPED = {"audits.overlap.distribution", "root", "source", "waivers", "datasets", "severity"}
BYTE_KEYS = {"limits.max_file_bytes", "limits.max_row_bytes"}
# Keys naming a remote location: no order (any change loosens), shown as reports show a URL.
LOCATION_KEYS = {"index.location"}
SHOW_CHARS = 80


def order_of(key: str) -> Order | None:
    """The order of a key (dotted, datasets by name: ``datasets[eval].paths``); None: none."""
    if key.startswith("datasets["):            # any dataset's name
        key = "datasets[*]" + key.partition("]")[2]
    if key in ORDERS:
        return ORDERS[key]
    return next((o for pattern, o in ORDERS.items() if "*" in pattern
                 and not pattern.startswith("datasets[") and fnmatch.fnmatchcase(key, pattern)),
                None)


def direction(key: str, before: Any, after: Any) -> str:
    """"tighten" when ``after`` fails more than ``before`` by the key's order, else "loosen"."""
    order = order_of(key)
    tight = False
    if order in ("higher", "lower"):
        if before is not None and after is not None:
            tight = after > before if order == "higher" else after < before
    elif order == "true":
        tight = bool(after) and not before
    elif order == "false":
        tight = not after and bool(before)
    elif order == "severity":
        tight = SEVERITY_RANK[str(after)] > SEVERITY_RANK[str(before)]
    elif order == "fail_on":
        tight = FAIL_ON_RANK[str(after)] > FAIL_ON_RANK[str(before)]
    elif order == "fewer":
        tight = set(after or ()) <= set(before or ())
    elif order == "more":
        tight = set(after or ()) >= set(before or ()) and not new_urls(before, after)
    return "tighten" if tight else "loosen"


def new_urls(before: Any, after: Any) -> set[str]:
    """The remote locations (URLs) in ``after``'s paths that ``before``'s lack: adding or
    changing one is a loosening (a pull request must not make the run fetch a URL of its
    choosing)."""
    from ..datasets.remote import is_url

    return {p for p in after or () if isinstance(p, str) and is_url(p)} - set(before or ())


def show(key: str, value: Any) -> str:
    """A value as the policy diff prints it."""
    if value is None:
        text = "unset"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif key in BYTE_KEYS and isinstance(value, int):
        text = ByteSize(value).human_readable()
    elif key in LOCATION_KEYS and isinstance(value, str):
        from ..datasets.remote import is_url, public_url

        text = public_url(value) if is_url(value) else value
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    return text if len(text) <= SHOW_CHARS else text[:SHOW_CHARS - 1] + "…"


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every leaf of a nested mapping by its dotted key (lists are leaves)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if key in SKIPPED:
            continue
        if isinstance(v, dict):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def policy_data(config: Config) -> dict[str, Any]:
    """The config's policy keys (everything but datasets, severities and waivers), flattened."""
    return flatten(config.model_dump(mode="json"))


def dataset_data(config: Config) -> dict[str, dict[str, Any]]:
    """Each dataset's keys (flattened, without its name), by dataset name."""
    return {d.name: flatten(d.model_dump(mode="json", exclude={"name"}))
            for d in config.datasets}


def line_in(config: Config, key: str) -> int | None:
    """The line of a key in the config (``datasets[eval].role`` as ``datasets[1].role``), or
    of the nearest key above it that the file has."""
    if key.startswith("datasets["):
        name, _, rest = key[len("datasets["):].partition("]")
        index = next((i for i, d in enumerate(config.datasets) if d.name == name), None)
        key = f"datasets[{index}]{rest}" if index is not None else "datasets"
    candidates = [key]
    if key.startswith("audits.distribution"):      # written under its alias
        candidates.append("audits.overlap.distribution" + key[len("audits.distribution"):])
    prefixes = sorted({".".join(c.split(".")[:n]) for c in candidates
                       for n in range(1, c.count(".") + 2)}, key=lambda p: -p.count("."))
    for prefix in prefixes:                 # the deepest key the file has
        line = config.line_of(prefix)
        if line is None and prefix.endswith("]"):          # datasets[1] -> its name
            line = config.line_of(prefix + ".name")
        if line is not None:
            return line
    return None


def _level(config: Config, rule: Rule | None, raw: str | None) -> str:
    if raw is not None:
        return raw
    if rule is None:
        return "default"
    level = config.severity_for(rule)
    return "off" if level is None else Severity(level).value


def diff_configs(base: Config, head: Config, rules: Mapping[str, Rule]) -> list[PolicyChange]:
    """Every policy key the head's config changes from the base's, with its direction and the
    line of the head's config that changes it."""
    changes: list[PolicyChange] = []

    def add(key: str, before: Any, after: Any, direction_: str | None = None,
            shown: tuple[str, str] | None = None) -> None:
        b, a = shown or (show(key, before), show(key, after))
        changes.append(PolicyChange(key, b, a, direction_ or direction(key, before, after),
                                    head.source, line_in(head, key)))

    old, new = policy_data(base), policy_data(head)
    for key in sorted(old.keys() | new.keys()):
        if old.get(key) != new.get(key):
            add(key, old.get(key), new.get(key))
    for rule_id in sorted(base.severity.keys() | head.severity.keys()):
        b, a = base.severity.get(rule_id), head.severity.get(rule_id)
        if b == a:
            continue
        rule = rules.get(rule_id)
        before, after = _level(base, rule, b), _level(head, rule, a)
        key = f"severity.{rule_id}"
        if before == after:
            continue                      # the default written out: no change
        if "default" in (before, after):
            add(key, before, after, "loosen")
        else:
            add(key, before, after)
    changes.extend(diff_datasets(base, head))
    return changes


def diff_datasets(base: Config, head: Config) -> list[PolicyChange]:
    """Datasets added (tighten; with a remote location: loosen), removed (loosen), and the
    keys of each one both have."""
    old, new = dataset_data(base), dataset_data(head)
    roles = {d.name: d.role for d in base.datasets} | {d.name: d.role for d in head.datasets}
    out: list[PolicyChange] = []
    for name in dict.fromkeys([d.name for d in base.datasets] + [d.name for d in head.datasets]):
        key = f"datasets[{name}]"
        if name in old and name not in new:
            out.append(PolicyChange(key, f"{roles[name]} dataset", "removed", "loosen",
                                    head.source, line_in(head, "datasets")))
        elif name in new and name not in old:
            remote = new_urls((), new[name].get("paths"))     # a new remote location: loosen
            out.append(PolicyChange(key, "none", f"new {roles[name]} dataset"
                                    + (" with remote paths" if remote else ""),
                                    "loosen" if remote else "tighten",
                                    head.source, line_in(head, key + ".name")))
        else:
            for field in sorted(old[name].keys() | new[name].keys()):
                b, a = old[name].get(field), new[name].get(field)
                if b != a:
                    sub = f"{key}.{field}"
                    out.append(PolicyChange(sub, show(sub, b), show(sub, a),
                                            direction(sub, b, a), head.source,
                                            line_in(head, sub)))
    return out


def diff_new_policy(head: Config) -> list[PolicyChange]:
    """A config new on this change (none at the base) is policy, but not the remote locations
    it names: each train dataset with a URL, and ``index.location``, is a loosening."""
    empty = Config.model_construct(datasets=[])
    changes = [c for c in diff_datasets(empty, head) if c.direction == "loosen"]
    for key in sorted(LOCATION_KEYS):
        value = policy_data(head).get(key)
        if value is not None:
            changes.append(PolicyChange(key, show(key, None), show(key, value), "loosen",
                                        head.source, line_in(head, key)))
    return changes


WaiverPair = tuple[Listed | None, Listed | None]


def _same(a: str, b: str) -> bool:
    """The same waiver: the fingerprint written alike. A short id lengthened to a full
    fingerprint is another waiver (it may name another finding with that prefix): the old one
    is removed, the new one added."""
    return a == b


def pair_waivers(base: list[Listed], head: list[Listed]) -> list[WaiverPair]:
    """(base entry, head entry) for each waived fingerprint: None on the side without it."""
    pairs: list[WaiverPair] = []
    matched: set[int] = set()
    for h in head:
        b = next((x for x in base if _same(x.entry.fingerprint, h.entry.fingerprint)), None)
        if b is not None:
            matched.add(id(b))
        pairs.append((b, h))
    pairs.extend((b, None) for b in base if id(b) not in matched)
    return pairs


def waiver_key(item: Listed) -> str:
    """A waiver's key in the policy diff: ``waivers[<fingerprint as written>]``."""
    return f"waivers[{item.entry.fingerprint}]"


def _expiry(item: Listed) -> str:
    e = item.entry.expires
    return f"expires {e.isoformat()}" if e else "no expiry"


def waiver_change(b: Listed | None, h: Listed | None) -> PolicyChange | None:
    """The change of one waiver (added, removed, its expiry moved); None when unchanged."""
    if h is not None and b is None:
        return PolicyChange(waiver_key(h), "none", f"waived ({_expiry(h)})", "loosen", h.path,
                            h.line)
    if b is not None and h is None:
        return PolicyChange(waiver_key(b), f"waived ({_expiry(b)})", "removed", "tighten",
                            b.path, None)
    assert b is not None and h is not None
    before, after = b.entry.expires, h.entry.expires
    if before == after:
        return None
    extended = before is not None and (after is None or after > before)
    return PolicyChange(waiver_key(h), _expiry(b), _expiry(h),
                        "loosen" if extended else "tighten", h.path, h.line)


def diff_waivers(base: list[Listed], head: list[Listed]) -> list[PolicyChange]:
    """Waivers the head adds or extends (loosen) and removes or shortens (tighten)."""
    return [c for b, h in pair_waivers(base, head) if (c := waiver_change(b, h)) is not None]
