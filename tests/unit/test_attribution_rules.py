"""--base attribution, unit by unit: each rule's ``new_when`` judgement (rows, re-run, figures and
their margins), the audits re-run at the base (``incremental.attribution.attribute``) and the
waivers a change adds. tests/integration/test_attribution.py runs the same end to end on a git
repository with every kind of finding."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

import pytest

from conftest import BASIC_CONFIG, git_commit, git_init
from eval_firewall.audits import RULES, Audit
from eval_firewall.config import Config, DatasetConfig, load_config
from eval_firewall.datasets import LoadedDataset
from eval_firewall.findings import AuditResult, Finding, Match, Severity
from eval_firewall.incremental.attribution import BaseSide, attribute, waivers_at_base
from eval_firewall.incremental.changes import Changes
from eval_firewall.incremental.git import Git
from eval_firewall.incremental.judge import JUDGEMENTS, RATE_MARGIN, auc_margin, mark_new
from eval_firewall.inputs import Inputs
from eval_firewall.rows import Provenance, Row
from eval_firewall.rules import NewWhen, Rule, catalogue

EVAL, TRAIN = "data/eval.jsonl", "data/train.jsonl"


def row(role: str, line: int, text: str, generator: str | None = None) -> Row:
    path = EVAL if role == "eval" else TRAIN
    return Row(role, role, path, line, f"{role}-{line}", text,
               provenance=Provenance(generator=generator))


def dataset(role: str, rows: list[Row]) -> LoadedDataset:
    path = EVAL if role == "eval" else TRAIN
    return LoadedDataset(DatasetConfig(name=role, role=role, paths=[path], text=["question"]),
                         [path], rows)


def side_by_side(base: dict[str, list[Row]], head: dict[str, list[Row]]
                 ) -> tuple[Changes, dict[str, LoadedDataset]]:
    """The base and head datasets, and what changed: a head row is new unless the base has a
    row with its text (as :func:`load_base` decides, by content)."""
    was = {name: {r.text for r in rows} for name, rows in base.items()}
    changes = Changes("main", "0" * 40, {n: dataset(n, rows) for n, rows in base.items()})
    for name, rows in head.items():
        changes.new_rows[name] = {i for i, r in enumerate(rows) if r.text not in was.get(name, ())}
        changes.changed_files[name] = [rows[0].path] if changes.new_rows[name] else []
    return changes, {n: dataset(n, rows) for n, rows in head.items()}


OLD_EVAL = [row("eval", i + 1, f"old eval question {i}") for i in range(4)]
OLD_TRAIN = [row("train", i + 1, f"old train row {i}") for i in range(4)]
ADDED_EVAL = row("eval", 5, "a new eval question")
ADDED_TRAIN = row("train", 5, "a new train row")
CHANGES, HEAD = side_by_side({"eval": OLD_EVAL, "train": OLD_TRAIN},
                             {"eval": [*OLD_EVAL, ADDED_EVAL], "train": [*OLD_TRAIN, ADDED_TRAIN]})


def finding(rule: str, at: Row | None = None, *, audit: str | None = None, match: Row | None = None,
            score: float | None = None, count: int | None = None, path: str | None = None
            ) -> Finding:
    audit = audit or (RULES[rule].audit if rule in RULES else "toy")
    return Finding(audit, rule, Severity.ERROR, f"{rule} finding", dataset="eval",
                   path=at.path if at else path, line=at.line if at else None,
                   row_id=at.row_id if at else None, text=at.text if at else None, score=score,
                   count=count, match=Match.of(match) if match else None)


def judged(head: list[Finding], base: dict[str, list[Finding] | None], *,
           rules: dict[str, Rule] = RULES, sizes: dict[str, int] | None = None) -> list[bool]:
    return [f.new for f in mark_new(head, CHANGES, HEAD, base, rules, sizes)]


# --- every rule has a judgement, and the table in the docs says the same ---------------------

def test_every_new_when_has_a_judgement_and_every_rule_one_of_them():
    assert set(JUDGEMENTS) == set(get_args(NewWhen))
    for rule in RULES.values():
        assert rule.new_when in JUDGEMENTS, rule.id
        assert set(rule.compare_with) <= set(RULES), rule.id


def test_the_docs_table_lists_each_rule_under_its_judgement():
    text = (Path(__file__).resolve().parents[2] / "docs" / "incremental.md").read_text("utf-8")
    table = text.split("## What counts as new", 1)[1].split("\n\n")
    rows = [line for part in table for line in part.splitlines() if line.startswith("| `")]
    listed: dict[str, set[str]] = {}
    for line in rows:
        judgement, rules = line.split("|")[1:3]
        for how in judgement.replace("`", "").split(","):
            listed.setdefault(how.strip(), set()).update(
                r.strip(" `") for r in rules.replace(";", ",").split(",") if "`" in r)
    for rule in RULES.values():
        engine_rule = rule.audit in ("waivers", "policy")
        sheet_rule = rule.id.startswith("annotation-") and rule.new_when == "rerun"   # "annotation-*"
        if not (engine_rule or sheet_rule):
            assert rule.id in listed.get(rule.new_when, set()), (rule.id, rule.new_when)


# --- row findings ---------------------------------------------------------------------------

def test_a_row_finding_is_new_when_its_row_or_its_match_is():
    head = [finding("paraphrase", OLD_EVAL[0], match=OLD_TRAIN[0]),
            finding("paraphrase", ADDED_EVAL, match=OLD_TRAIN[1]),
            finding("paraphrase", OLD_EVAL[2], match=ADDED_TRAIN),      # an old row copies a new one
            finding("model-label", OLD_EVAL[3]), finding("model-label", ADDED_EVAL)]
    # Judged by rows alone: what the base run found (here: nothing, or it could not run) is moot.
    assert judged(head, {}) == [False, True, True, False, True]
    assert judged(head, {"provenance": None}) == [False, True, True, False, True]


def test_missing_provenance_is_judged_by_its_row_or_as_a_share_of_the_rows():
    per_row = finding("missing-provenance", OLD_EVAL[1])
    assert judged([per_row], {"provenance": []}) == [False]
    # 2 of 4 eval rows at the base; the head has 5 rows.
    base = {"provenance": [finding("missing-provenance", count=2)]}
    same_share = finding("missing-provenance", count=2)      # 2 of 5: a smaller share
    larger = finding("missing-provenance", count=3)           # 3 of 5 > 2 of 4
    assert judged([same_share, larger], base) == [False, True]
    assert judged([same_share], {"provenance": []}) == [True]


# --- findings of re-run audits --------------------------------------------------------------

def test_a_rerun_finding_is_new_when_the_base_had_fewer_copies():
    card = finding("machine-generated-card", path="data/README.md")
    base = {"provenance": [card, card]}
    assert judged([card, card, card], base) == [False, False, True]   # the third copy is new
    assert judged([card], {"provenance": None}) == [True]             # no base run: all new
    assert judged([card], {}) == [True]          # not re-run at all, and about no row: new


def test_a_rerun_finding_on_a_new_row_is_new_even_when_the_base_had_one_like_it():
    flip = finding("answer-flip", ADDED_EVAL)
    assert judged([flip], {"invariance": [flip]}) == [True]
    old_flip = finding("answer-flip", OLD_EVAL[0])
    assert judged([old_flip], {"invariance": [old_flip]}) == [False]


def test_an_unreadable_row_broken_another_way_is_a_new_problem():
    broken = Finding("schema", "invalid-row", Severity.ERROR, "bad JSON", dataset="eval",
                     path=EVAL, line=2, digest="ab" * 16)
    other_way = replace(broken, message="field 'answer': missing")     # same row, same digest
    assert broken.fingerprint == other_way.fingerprint
    assert judged([broken, other_way], {"schema": [broken]}) == [False, True]
    # A rule judged "rerun" compares fingerprints alone: the message does not matter.
    card = finding("machine-generated-card", path="data/README.md")
    assert judged([replace(card, message="reworded")], {"provenance": [card]}) == [False]


def test_label_disagreement_is_compared_row_by_row():
    two = finding("label-disagreement", OLD_EVAL[0], count=2)
    base = {"disagreement": [replace(two, count=1)]}
    assert judged([two], base) == [True]                      # more annotators disagree now
    assert judged([replace(two, count=1)], base) == [False]
    other = finding("label-disagreement", OLD_EVAL[1], count=1)
    assert judged([other], base) == [True]                    # not flagged at the base


def test_counts_grow_in_the_dataset_or_in_the_same_sheet():
    base = {"invariance": [finding("stale-prediction", count=3)],
            "disagreement": [finding("annotation-empty", count=2, path="sheets/a.csv")]}
    assert judged([finding("stale-prediction", count=3), finding("stale-prediction", count=4)],
                  base) == [False, True]
    assert judged([finding("annotation-empty", count=2, path="sheets/a.csv"),
                   finding("annotation-empty", count=1, path="sheets/b.csv")],
                  base) == [False, True]                     # another sheet: its own count


# --- dataset-level figures and their margins --------------------------------------------------

def test_a_rate_is_new_when_it_rose_by_more_than_the_margin():
    base = {"disagreement": [finding("disagreement-rate", score=0.20)]}
    within = finding("disagreement-rate", score=0.20 + RATE_MARGIN - 0.001)
    beyond = finding("disagreement-rate", score=0.20 + RATE_MARGIN + 0.001)
    assert judged([within, beyond], base) == [False, True]
    assert judged([within], {"disagreement": []}) == [True]   # passed at the base


def test_the_auc_margin_comes_from_the_figures_sample_size():
    # The docs' figures: 0.063 at the bundled example's 339 rows a side, 0.026 at the cap.
    assert round(auc_margin(339), 3) == 0.063 and round(auc_margin(2000), 3) == 0.026
    base = {"distribution": [finding("same-generator", score=0.55)]}
    head = [finding("same-generator", score=0.50)]                # 0.05 lower
    assert judged(head, base, sizes={"distribution": 339}) == [False]    # within 0.063
    assert judged(head, base, sizes={"distribution": 5000}) == [True]    # beyond 0.018
    assert judged(head, base) == [True]                           # no sample size: no margin


def test_a_sample_too_small_is_not_new_when_the_base_had_the_rate():
    small = finding("disagreement-sample-too-small")
    assert judged([small], {"disagreement": [finding("disagreement-rate", score=0.3)]}) == [False]
    assert judged([small], {"disagreement": [small]}) == [False]
    assert judged([small], {"disagreement": []}) == [True]


def test_a_shared_generator_is_new_when_it_made_more_rows():
    def generated(extra_train: int) -> tuple[Changes, dict[str, LoadedDataset]]:
        ev = [row("eval", 1, "q one", "gpt-x"), row("eval", 2, "q two")]
        tr = [row("train", 1, "t one", "GPT-X")]
        more = [row("train", 2 + i, f"t more {i}", "gpt-x") for i in range(extra_train)]
        return side_by_side({"eval": ev, "train": tr}, {"eval": ev, "train": tr + more})

    for extra, new in ((0, False), (1, True)):
        changes, head = generated(extra)
        shared = finding("shared-generator", head["eval"].rows[0])
        [out] = mark_new([shared], changes, head, {"provenance": [shared]}, RULES)
        assert out.new is new


# --- a rule the judge has never heard of ----------------------------------------------------

def test_a_new_rule_is_judged_by_its_new_when_not_by_its_id():
    rules = catalogue([*RULES.values(), Rule("toy-rate", "toy", Severity.ERROR, "A toy rate.",
                                             new_when="rate"),
                       Rule("toy-row", "toy", Severity.ERROR, "A toy row.", new_when="row")])
    base = {"toy": [finding("toy-rate", score=0.30)]}
    assert judged([finding("toy-rate", score=0.31), finding("toy-rate", score=0.40)], base,
                  rules=rules) == [False, True]
    assert judged([finding("toy-row", OLD_EVAL[0]), finding("toy-row", ADDED_EVAL)], {"toy": None},
                  rules=rules) == [False, True]
    # Not in the catalogue at all: judged as a re-run finding.
    assert judged([finding("toy-unknown", OLD_EVAL[0])], {"toy": []}, rules=rules) == [True]


# --- which audits are re-run at the base ----------------------------------------------------

@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Config:
    path = tmp_path_factory.mktemp("config") / ".eval-firewall.yml"
    path.write_text(BASIC_CONFIG, encoding="utf-8")
    return load_config(path)


def _toy(**entry: Any) -> tuple[Audit, list[int]]:
    """A toy audit flagging eval rows that shout, and the log of how many rows it ran on."""
    ran: list[int] = []

    def run(inputs: Inputs, cfg: object) -> AuditResult:
        rows = [r for d in inputs.of_role("eval") for r in d.rows]
        ran.append(len(rows))
        return AuditResult("toy", "Toy", [finding("toy-row", r) for r in rows if "SHOUT" in r.text])

    return Audit("toy", run, (Rule("toy-row", "toy", Severity.ERROR, "toy"),), section=None,
                 **entry), ran


def _attribute(config: Config, audit: Audit, head: list[Row], base: list[Row]) -> list[bool]:
    changes, loaded = side_by_side({"eval": base}, {"eval": head})
    side = BaseSide(config, changes, loaded, {}, run=lambda a, inputs: a.run(inputs, None),
                    variants=lambda datasets: [])
    head_result = audit.run(Inputs(list(loaded.values())), None)
    [out] = attribute([head_result], [audit], catalogue(audit.rules), side)
    return [f.new for f in out.findings]


def test_a_rerun_audit_is_run_again_on_the_base_rows(config: Config):
    audit, ran = _toy()
    shouting, same_text = row("eval", 1, "SHOUT once"), row("eval", 2, "SHOUT once")
    # Judged "rerun": the base had one such finding, the head has two.
    assert _attribute(config, audit, [shouting, same_text], [shouting]) == [False, True]
    assert ran == [2, 1]                                      # the head's rows, then the base's


def test_an_audit_judged_by_rows_is_never_run_again(config: Config):
    audit, ran = _toy(attribution="rows")
    shouting, added = row("eval", 1, "SHOUT once"), row("eval", 2, "SHOUT again")
    assert _attribute(config, audit, [shouting, added], [shouting]) == [False, True]
    assert ran == [2]


def test_an_expensive_audit_is_run_again_only_when_it_fails_and_something_changed(config: Config):
    audit, ran = _toy(expensive=True)
    quiet = row("eval", 1, "nothing to see")
    assert _attribute(config, audit, [quiet, row("eval", 2, "still quiet")], [quiet]) == []
    assert ran == [2]                                         # no findings: not run again
    ran.clear()
    shouting = row("eval", 1, "SHOUT once")
    assert _attribute(config, audit, [shouting], [shouting]) == [False]
    assert ran == [1]                       # nothing changed: the base's figure is this one
    ran.clear()
    assert _attribute(config, audit, [shouting, row("eval", 2, "SHOUT")], [shouting]) == [False, True]
    assert ran == [2, 1]


def test_an_audits_refine_new_has_the_last_word_with_both_sides_inputs(config: Config):
    seen: list[tuple[int, int]] = []

    def refine(findings, head: Inputs, base: Inputs) -> list[Finding]:
        seen.append((len(head.datasets[0].rows), len(base.datasets[0].rows)))
        return [replace(f, new=not f.new) for f in findings]

    shouting, same_text = row("eval", 1, "SHOUT once"), row("eval", 2, "SHOUT once")
    audit, _ = _toy(refine_new=refine)
    assert _attribute(config, audit, [shouting, same_text], [shouting]) == [True, False]
    assert seen == [(2, 1)]
    seen.clear()
    by_rows, _ = _toy(attribution="rows", refine_new=refine)      # not run at the base: no say
    assert _attribute(config, by_rows, [shouting, same_text], [shouting]) == [False, False]
    assert seen == []


def test_the_figures_sample_size_reaches_the_judgement(config: Config):
    def figure(inputs: Inputs, cfg: object) -> AuditResult:
        n = len(inputs.datasets[0].rows)
        return AuditResult("toy", "Toy", [finding("toy-auc", score=0.60 - 0.01 * n)],
                           sample_size=339 if n > 1 else 5000)

    rules = (Rule("toy-auc", "toy", Severity.WARNING, "toy AUC", new_when="auc"),)
    audit = Audit("toy", figure, rules, section=None)
    base = [row("eval", 1, "one")]
    # 0.58 at the head vs 0.59 at the base: within the margin of 339 rows a side (0.063).
    assert _attribute(config, audit, [*base, row("eval", 2, "two")], base) == [False]


# --- the waivers a change adds ---------------------------------------------------------------

def test_waivers_at_base_reads_the_base_files_never_the_worktree(tmp_path: Path):
    root = git_init(tmp_path)
    (root / ".eval-firewall.yml").write_text(BASIC_CONFIG, encoding="utf-8")
    waiver = ('- fingerprint: "{fp}"\n  reason: kept on purpose\n  approved_by: alice\n')
    waivers = root / ".eval-firewall-waivers.yml"
    waivers.write_text(waiver.format(fp="a" * 32), encoding="utf-8")
    git_commit(root, "base: one waiver")
    waivers.write_text(waiver.format(fp="a" * 32) + waiver.format(fp="b" * 32), encoding="utf-8")
    config = load_config(root / ".eval-firewall.yml")
    changes = Changes("HEAD", Git.containing(root).resolve("HEAD"), {})
    found = waivers_at_base(config, changes, [".eval-firewall-waivers.yml", ".eval-firewall.yml"])
    assert found == {"a" * 32}                 # the one this change adds is not the base's
    assert waivers_at_base(config, changes, ["/etc/passwd"]) == set()   # absolute: never read
