"""The policy diff and the effective policy (eval_firewall.policy.diff, .effective): every
loosening the policy issue lists is pending and not applied, tightenings apply at once."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from eval_firewall.audits import RULES
from eval_firewall.config import Config, parse_config
from eval_firewall.errors import UserError
from eval_firewall.policy.diff import dataset_data, diff_configs, diff_waivers, policy_data
from eval_firewall.policy.effective import (
    Approvals,
    cap_limits,
    decide,
    effective_config,
    effective_waivers,
    overlay,
    result,
)
from eval_firewall.policy.load import parse_ceiling
from eval_firewall.policy.waivers import Listed, WaiverEntry

BASE: dict = {
    "datasets": [
        {"name": "train", "role": "train", "paths": ["data/train/*.jsonl"], "text": ["question"],
         "label": "answer"},
        {"name": "eval", "role": "eval", "paths": ["data/eval/*.jsonl"], "text": ["question"],
         "label": "answer", "id": "id",
         "provenance": {"label_source": "source", "verified_by": "checker"}},
        {"name": "eval-hard", "role": "eval", "paths": ["data/hard/*.jsonl"],
         "text": ["question"], "label": "answer"},
    ],
    "fail_on": "error",
    "fail_on_existing": True,
    "invalid_rows": "error",
    "severity": {"near-duplicate": "error"},
    "audits": {"overlap": {"semantic": {"enabled": True}},
               "invariance": {"predictions": "preds.jsonl"}},
}


def parse(data: dict, root: Path) -> Config:
    return parse_config(yaml.safe_dump(data, sort_keys=False), source=".eval-firewall.yml",
                        root=root, rules=RULES)


def edited(edit: Callable[[dict], None]) -> dict:
    data = copy.deepcopy(BASE)
    edit(data)
    return data


def at(data: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[last] = value


def ds(name: str) -> Callable[[dict], dict]:
    return lambda data: next(d for d in data["datasets"] if d["name"] == name)


# Every loosening of the policy issue's item 1 (and the keys with no order of item 2).
LOOSENINGS = [
    ("fail_on", lambda d: at(d, "fail_on", "never")),
    ("fail_on_existing", lambda d: at(d, "fail_on_existing", False)),
    ("invalid_rows", lambda d: at(d, "invalid_rows", "warning")),
    ("severity.near-duplicate", lambda d: at(d, "severity", {"near-duplicate": "warning"})),
    ("severity.exact-duplicate", lambda d: at(d, "severity", {"near-duplicate": "error",
                                                               "exact-duplicate": "off"})),
    ("audits.overlap.enabled", lambda d: at(d, "audits.overlap.enabled", False)),
    ("audits.overlap.exact.enabled", lambda d: at(d, "audits.overlap.exact.enabled", False)),
    ("audits.provenance.enabled", lambda d: at(d, "audits.provenance.enabled", False)),
    ("audits.distribution.enabled", lambda d: at(d, "audits.distribution.enabled", False)),
    ("audits.overlap.near_duplicate.enabled",
     lambda d: at(d, "audits.overlap.near_duplicate.enabled", False)),
    ("audits.overlap.semantic.enabled", lambda d: at(d, "audits.overlap.semantic.enabled", False)),
    ("audits.disagreement.enabled", lambda d: at(d, "audits.disagreement.enabled", False)),
    ("audits.invariance.enabled", lambda d: at(d, "audits.invariance.enabled", False)),
    ("audits.overlap.near_duplicate.within_eval",
     lambda d: at(d, "audits.overlap.near_duplicate.within_eval", False)),
    ("audits.provenance.missing", lambda d: at(d, "audits.provenance.missing", "notice")),
    ("audits.overlap.near_duplicate.threshold",
     lambda d: at(d, "audits.overlap.near_duplicate.threshold", 0.99)),
    ("audits.overlap.semantic.threshold", lambda d: at(d, "audits.overlap.semantic.threshold", 0.9)),
    ("audits.overlap.semantic.min_probability",
     lambda d: at(d, "audits.overlap.semantic.min_probability", 0.95)),
    ("audits.distribution.max_auc", lambda d: at(d, "audits.distribution.max_auc", 0.99)),
    ("audits.disagreement.max_disagreement",
     lambda d: at(d, "audits.disagreement.max_disagreement", 0.9)),
    ("audits.invariance.max_flip_rate", lambda d: at(d, "audits.invariance.max_flip_rate", 0.9)),
    ("audits.provenance.human_label_sources",
     lambda d: at(d, "audits.provenance.human_label_sources", ["human", "gpt-4"])),
    ("audits.provenance.allow_generated_eval",
     lambda d: at(d, "audits.provenance.allow_generated_eval", True)),
    ("limits.max_file_bytes", lambda d: at(d, "limits.max_file_bytes", "1PiB")),
    ("limits.max_row_bytes", lambda d: at(d, "limits.max_row_bytes", "1PiB")),
    ("limits.max_files_per_glob", lambda d: at(d, "limits.max_files_per_glob", 100000)),
    # keys with no order
    ("audits.overlap.semantic.model", lambda d: at(d, "audits.overlap.semantic.model", "org/m")),
    ("audits.overlap.semantic.scoring", lambda d: at(d, "audits.overlap.semantic.scoring",
                                                     "cosine")),
    ("audits.invariance.seed", lambda d: at(d, "audits.invariance.seed", 7)),
    ("audits.invariance.kinds", lambda d: at(d, "audits.invariance.kinds", ["noise"])),
    ("audits.invariance.preambles", lambda d: at(d, "audits.invariance.preambles", ["Hi."])),
    ("audits.invariance.predictions", lambda d: at(d, "audits.invariance.predictions",
                                                   "other.jsonl")),
    ("index.location", lambda d: at(d, "index.location", "s3://bucket/index")),
    # datasets: removed, moved from eval to train, their fields
    ("datasets[eval-hard]", lambda d: d["datasets"].pop(2)),
    ("datasets[eval-hard].role", lambda d: ds("eval-hard")(d).update(role="train")),
    ("datasets[eval].paths", lambda d: ds("eval")(d).update(paths=["data/eval/clean.jsonl"])),
    ("datasets[eval].text", lambda d: ds("eval")(d).update(text=["answer"])),
    ("datasets[eval].label", lambda d: ds("eval")(d).update(label="question")),
    ("datasets[eval].id", lambda d: ds("eval")(d).update(id="other")),
    ("datasets[eval].provenance.label_source",
     lambda d: ds("eval")(d)["provenance"].update(label_source="who")),
    ("datasets[eval].provenance.verified_by",
     lambda d: ds("eval")(d)["provenance"].pop("verified_by")),
]


@pytest.mark.parametrize("key,edit", LOOSENINGS, ids=[k for k, _ in LOOSENINGS])
def test_every_loosening_is_pending_and_not_applied(tmp_path, key, edit):
    base, head = parse(BASE, tmp_path), parse(edited(edit), tmp_path)
    changes = diff_configs(base, head, RULES)
    [change] = [c for c in changes if c.key == key]
    assert change.direction == "loosen" and change.path == ".eval-firewall.yml"
    decided = decide(changes, None)
    assert {c.status for c in decided if c.direction == "loosen"} == {"pending"}
    applied = effective_config(base, head, decided)
    # Not applied: the run's config has the base's value.
    assert policy_data(applied) == policy_data(base)
    assert applied.severity == base.severity
    assert dataset_data(applied) == dataset_data(base)
    # ... and it fails the run by itself, naming the change.
    [finding] = [f for f in result(decided).findings if f.row_id == key]
    assert finding.rule == "policy-change" and finding.severity.value == "error" and finding.new
    assert f"relaxes the gate: {key} " in finding.message and "pending approval" in finding.message


def test_a_change_names_the_line_of_the_head_config(tmp_path):
    head_text = yaml.safe_dump(BASE, sort_keys=False).replace("fail_on: error", "fail_on: never")
    head = parse_config(head_text, source=".eval-firewall.yml", root=tmp_path)
    [change] = diff_configs(parse(BASE, tmp_path), head, RULES)
    line = head_text.splitlines().index("fail_on: never") + 1
    assert (change.key, change.before, change.after, change.line) == ("fail_on", "error",
                                                                      "never", line)
    assert change.location == f".eval-firewall.yml:{line}"


TIGHTENINGS = [
    ("fail_on", lambda d: at(d, "fail_on", "warning")),
    ("severity.stale-waiver", lambda d: at(d, "severity", {"near-duplicate": "error",
                                                            "stale-waiver": "error"})),
    ("audits.overlap.near_duplicate.threshold",
     lambda d: at(d, "audits.overlap.near_duplicate.threshold", 0.7)),
    ("limits.max_file_bytes", lambda d: at(d, "limits.max_file_bytes", "1GiB")),
    ("datasets[eval].paths",
     lambda d: ds("eval")(d).update(paths=["data/eval/*.jsonl", "data/more/*.jsonl"])),
    ("datasets[new-eval]", lambda d: d["datasets"].append(
        {"name": "new-eval", "role": "eval", "paths": ["x/*.jsonl"], "text": "q"})),
    ("datasets[new-train]", lambda d: d["datasets"].append(
        {"name": "new-train", "role": "train", "paths": ["y/*.jsonl"], "text": "q"})),
]


@pytest.mark.parametrize("key,edit", TIGHTENINGS, ids=[k for k, _ in TIGHTENINGS])
def test_a_tightening_applies_at_once(tmp_path, key, edit):
    base, head = parse(BASE, tmp_path), parse(edited(edit), tmp_path)
    changes = diff_configs(base, head, RULES)
    [change] = changes
    assert (change.key, change.direction) == (key, "tighten")
    decided = decide(changes, None)
    assert decided[0].status == "applied" and not result(decided).findings
    applied = effective_config(base, head, decided)
    assert policy_data(applied) == policy_data(head) and applied.severity == head.severity
    assert dataset_data(applied) == dataset_data(head)


def test_an_approved_loosening_applies_and_names_its_reviewer(tmp_path):
    base = parse(BASE, tmp_path)
    head = parse(edited(lambda d: at(d, "fail_on", "never")), tmp_path)
    decided = decide(diff_configs(base, head, RULES),
                     Approvals({".eval-firewall.yml": "maintainer"}))
    assert [(c.status, c.reviewer) for c in decided] == [("approved", "maintainer")]
    assert effective_config(base, head, decided).fail_on == "never"
    assert not result(decided).findings
    # Approval of another file (the waiver file) does not approve the config's changes.
    other = decide(diff_configs(base, head, RULES),
                   Approvals({".eval-firewall-waivers.yml": "maintainer"}))
    assert other[0].status == "pending"


def test_trusting_the_head_applies_every_change_and_still_lists_it(tmp_path):
    base = parse(BASE, tmp_path)
    head = parse(edited(lambda d: at(d, "audits.overlap.enabled", False)), tmp_path)
    decided = decide(diff_configs(base, head, RULES), None, trusted=True)
    assert [c.status for c in decided] == ["trusted"]
    assert effective_config(base, head, decided).audits.overlap.enabled is False


def test_a_pending_loosening_of_several_keys_keeps_the_tightenings(tmp_path):
    base = parse(BASE, tmp_path)
    head = parse(edited(lambda d: (at(d, "fail_on", "never"),
                                   at(d, "audits.overlap.near_duplicate.threshold", 0.7))),
                 tmp_path)
    applied = effective_config(base, head, decide(diff_configs(base, head, RULES), None))
    assert applied.fail_on == "error"
    assert applied.audits.overlap.near_duplicate.threshold == 0.7


def waiver(fp: str, expires: dt.date | None = None, line: int = 1) -> Listed:
    return Listed(WaiverEntry(fingerprint=fp, reason="kept", approved_by="alice",
                              expires=expires), ".eval-firewall-waivers.yml", line)


JAN, JUN = dt.date(2027, 1, 1), dt.date(2027, 6, 1)


@pytest.mark.parametrize("base,head,direction,after", [
    ([], [waiver("abcdef12")], "loosen", "waived (no expiry)"),                  # added
    ([waiver("abcdef12", JAN)], [waiver("abcdef12", JUN)], "loosen", "expires 2027-06-01"),
    ([waiver("abcdef12", JAN)], [waiver("abcdef12")], "loosen", "no expiry"),  # extended
    ([waiver("abcdef12", JUN)], [waiver("abcdef12", JAN)], "tighten", "expires 2027-01-01"),
    ([waiver("abcdef12")], [], "tighten", "removed"),
], ids=["added", "extended", "expiry-removed", "shortened", "removed"])
def test_waiver_changes_and_which_apply(base, head, direction, after):
    [change] = diff_waivers(base, head)
    assert (change.key, change.direction, change.after) == ("waivers[abcdef12]", direction,
                                                            after)
    kept = effective_waivers(base, head, decide([change], None))
    expected = base if direction == "loosen" else head
    assert [(w.entry.fingerprint, w.entry.expires) for w in kept] == \
        [(w.entry.fingerprint, w.entry.expires) for w in expected]
    approved = effective_waivers(base, head, decide([change], Approvals(
        {".eval-firewall-waivers.yml": "bob"})))
    assert [w.entry for w in approved] == [w.entry for w in head]


def test_unchanged_waivers_are_no_change():
    assert diff_waivers([waiver("abcdef12")], [waiver("abcdef12", line=9)]) == []


def test_limits_are_capped_at_the_ceiling(tmp_path):
    head = parse(edited(lambda d: at(d, "limits", {"max_file_bytes": "1PiB",
                                                  "max_files_per_glob": 50})), tmp_path)
    ceiling = parse_ceiling("{max_file_bytes: 1GiB, max_files_per_glob: 100}")
    assert ceiling == {"max_file_bytes": 2**30, "max_files_per_glob": 100}
    capped, notes = cap_limits(head, ceiling)
    assert capped.limits.max_file_bytes == 2**30 and capped.limits.max_files_per_glob == 50
    assert notes == ["limits.max_file_bytes 1.0PiB is capped at 1.0GiB (max-limits)"]


@pytest.mark.parametrize("text,field", [("{max_file_bytes: lots}", "max_file_bytes"),
                                        ("{max_rows: 3}", "max_rows"),
                                        ("{max_files_per_glob: 0}", "max_files_per_glob")])
def test_a_bad_ceiling_is_a_one_line_error_naming_the_key(text, field):
    with pytest.raises(UserError) as err:
        parse_ceiling(text)
    assert err.value.field == field and err.value.path == "max-limits"


def test_a_trusted_policy_file_overrides_whatever_the_config_says(tmp_path):
    head = parse(edited(lambda d: at(d, "fail_on", "never")), tmp_path)
    out = overlay(head, {"fail_on": "warning", "severity": {"paraphrase": "error"}},
                  ".github/eval-firewall-policy.yml")
    assert out.fail_on == "warning"
    assert out.severity == {"near-duplicate": "error", "paraphrase": "error"}
    with pytest.raises(UserError) as err:
        overlay(head, {"datasets": []}, "policy.yml")
    assert (err.value.path, err.value.field) == ("policy.yml", "datasets")
    with pytest.raises(UserError) as err:
        overlay(head, {"fail_on": "sometimes"}, "policy.yml")
    assert err.value.field == "fail_on"


def test_a_change_written_under_the_alias_is_found_with_its_line(tmp_path):
    head_text = yaml.safe_dump(BASE, sort_keys=False).replace(
        "  overlap:\n", "  overlap:\n    distribution:\n      enabled: false\n", 1)
    head = parse_config(head_text, source=".eval-firewall.yml", root=tmp_path)
    base = parse(BASE, tmp_path)
    [change] = diff_configs(base, head, RULES)
    assert (change.key, change.direction) == ("audits.distribution.enabled", "loosen")
    assert change.line == head_text.splitlines().index("      enabled: false") + 1
    applied = effective_config(base, head, decide([change], None))
    assert applied.audits.distribution.enabled is True


def test_a_short_id_rewritten_as_a_longer_fingerprint_is_a_new_waiver():
    """A pull request could craft a row whose finding's fingerprint starts with a waived
    short id: lengthening the id to that fingerprint must not keep the old approval."""
    changes = diff_waivers([waiver("abcdef12")], [waiver("abcdef12" + "0" * 24)])
    assert sorted((c.direction, c.after) for c in changes) == [
        ("loosen", "waived (no expiry)"), ("tighten", "removed")]
    kept = effective_waivers([waiver("abcdef12")], [waiver("abcdef12" + "0" * 24)],
                             decide(changes, None))
    assert kept == []


def test_the_policy_file_of_a_first_push_is_read_within_bounds(tmp_path):
    """With no base commit the policy file comes from the checkout: a huge file is refused
    after reading one byte past the limit (not read whole), and a link is not followed."""
    import tracemalloc

    from eval_firewall.policy.load import trusted_file

    huge = tmp_path / "policy.yml"
    with open(huge, "wb") as fh:
        fh.truncate(3 << 30)          # sparse: 3 GiB of zeros, nothing on disk
    tracemalloc.start()
    with pytest.raises(UserError, match="larger than") as caught:
        trusted_file(None, None, "policy.yml", tmp_path)  # type: ignore[arg-type]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "\n" not in str(caught.value) and peak < 16 << 20
    outside = tmp_path / "outside.yml"
    outside.write_text("fail_on: error\n")
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "policy.yml").symlink_to(outside)
    with pytest.raises(UserError, match="not a regular file"):
        trusted_file(None, None, "policy.yml", tmp_path / "repo")  # type: ignore[arg-type]
