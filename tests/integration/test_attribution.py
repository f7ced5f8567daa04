"""Which findings a change introduced (`--base`): harmless edits make none new; each planted
change makes exactly its own findings new; the bundled example judged as a pull request."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, git, git_commit, git_init, gsm8k, write_jsonl
from eval_firewall.config import load_config
from eval_firewall.engine import run_audits
from eval_firewall.inputs.perturb import perturb_rows
from eval_firewall.report.verdict import verdict_line
from eval_firewall.rows import Row

HUMAN = {"label_source": "human", "verified_by": "ana", "generator": None}
PROVENANCE = ("    provenance: {label_source: meta.label_source, verified_by: meta.verified_by, "
              "generator: meta.generator}\n")
CONFIG = f"""\
datasets:
  - name: train
    role: train
    paths: [data/train.jsonl]
    text: question
    label: answer
{PROVENANCE}  - name: eval
    role: eval
    paths: [data/eval.jsonl]
    text: question
    label: answer
    id: id
{PROVENANCE}audits:
  overlap:
    semantic: {{enabled: false}}
    distribution: {{enabled: false}}
  disagreement: {{annotations: "annotations/*.csv", max_disagreement: 0.3}}
  invariance: {{predictions: predictions.jsonl, max_flip_rate: 0.02}}
"""
TRAIN = gsm8k("train", 700)
TEST = gsm8k("test", 200)


def train_row(i: int, **meta) -> dict:
    return {"id": f"train-{i}", "question": TRAIN[i]["question"], "answer": TRAIN[i]["answer"],
            "meta": {**HUMAN, **meta}}


def eval_row(i: int, row_id: str | None = None, question: str | None = None, **meta) -> dict:
    return {"id": row_id or f"e-{i:03d}", "question": question or TEST[i]["question"],
            "answer": TEST[i]["answer"], "meta": {**HUMAN, **meta}}


def final(answer: str) -> str:
    return answer.split("####")[-1].strip()


def predictions_for(row: dict, wrong_kinds: tuple[str, ...] = ()) -> list[dict]:
    """A consistent model's predictions for every prompt of ``row`` (its label's answer),
    wrong on the variant kinds named."""
    as_row = Row(dataset="eval", role="eval", path="data/eval.jsonl", line=1,
                 row_id=row["id"], text=row["question"], label=row["answer"])
    out = []
    for v in perturb_rows([as_row], seed=0):
        answer = "-1" if v.kind in wrong_kinds else final(row["answer"])
        out.append({"id": v.id, "prediction": answer, "sha": v.sha})
    return out


def sheet(lines: list[tuple[str, str]]) -> str:
    return "# dataset: eval\nrow_id,annotator,answer\n" + "".join(
        f"{row_id},ana,{answer}\n" for row_id, answer in lines)


class State:
    """The repository's files as data: edited in memory, then written to the worktree."""

    def __init__(self) -> None:
        self.train = [train_row(i) for i in range(150)]
        self.train[0]["meta"]["generator"] = "synth-1"
        self.eval = [eval_row(i) for i in range(40)]
        self.eval += [eval_row(40, "e-leak", TRAIN[5]["question"]),          # an old leak
                      eval_row(41, "e-model", label_source="gpt-4"),          # an old model label
                      eval_row(42, "e-gen", generator="synth-1")]             # an old shared one
        self.predictions = {}
        for row in self.eval:
            flips = ("synonym", "noise") if row["id"] in {f"e-{i:03d}" for i in range(6)} else ()
            self.predictions[row["id"]] = predictions_for(row, flips)
        del self.predictions["e-039"]                       # an old missing prediction
        self.annotations = [(f"e-{i:03d}", final(TEST[i]["answer"]) if i != 10 else "-5")
                            for i in range(10, 20)]         # an old disagreement at e-010

    def write(self, repo: Path) -> None:
        write_jsonl(repo / "data/train.jsonl", self.train)
        write_jsonl(repo / "data/eval.jsonl", self.eval)
        write_jsonl(repo / "predictions.jsonl",
                    [p for row in self.eval for p in self.predictions.get(row["id"], [])])
        (repo / "annotations").mkdir(exist_ok=True)
        (repo / "annotations/ana.csv").write_text(sheet(self.annotations), encoding="utf-8")
        (repo / ".eval-firewall.yml").write_text(CONFIG, encoding="utf-8")


@pytest.fixture(scope="module")
def fixture_repo(tmp_path_factory) -> tuple[Path, str]:
    repo = git_init(tmp_path_factory.mktemp("attribution"))
    State().write(repo)
    return repo, git_commit(repo, "base")


def audit(repo: Path, base: str, state: State) -> list:
    git(repo, "checkout", "-q", "-f", base)
    git(repo, "clean", "-q", "-fdx")
    state.write(repo)
    report = run_audits(load_config(repo / ".eval-firewall.yml"), base=base)
    return report


def test_the_base_has_a_finding_of_every_kind(fixture_repo):
    repo, base = fixture_repo
    report = audit(repo, base, State())
    rules = {f.rule for f in report.findings}
    assert {"exact-duplicate", "model-label", "generated-eval-row", "shared-generator",
            "answer-flip", "invariance-flip-rate", "missing-prediction", "label-disagreement",
            "disagreement-sample-too-small"} <= rules
    assert not report.new_findings and report.status == "pass"


# Harmless edits: add, remove or reorder clean rows (with their predictions).
CLEAN_EVAL = [f"e-{i:03d}" for i in range(20, 39)]     # no annotation, no flip, predicted
SPARE_TEST = list(range(100, 140))
CLEAN_TRAIN = [f"train-{i}" for i in range(50, 150)]
SPARE_TRAIN = list(range(500, 540))
EDITS = st.lists(st.tuples(st.sampled_from(["add eval", "remove eval", "add train",
                                            "remove train", "reorder eval", "reorder train"]),
                           st.integers(0, 10**6)), min_size=1, max_size=6)


def harmless(state: State, edits) -> State:
    spare_test, spare_train = list(SPARE_TEST), list(SPARE_TRAIN)
    for what, k in edits:
        rng = random.Random(k)
        if what == "add eval":
            row = eval_row(spare_test.pop(k % len(spare_test)))
            state.eval.insert(k % (len(state.eval) + 1), row)
            state.predictions[row["id"]] = predictions_for(row)
        elif what == "remove eval":
            ids = [r["id"] for r in state.eval if r["id"] in CLEAN_EVAL]
            gone = ids[k % len(ids)]
            state.eval = [r for r in state.eval if r["id"] != gone]
            state.predictions.pop(gone)
        elif what == "add train":
            state.train.insert(k % (len(state.train) + 1),
                               train_row(spare_train.pop(k % len(spare_train))))
        elif what == "remove train":
            ids = [r["id"] for r in state.train if r["id"] in CLEAN_TRAIN]
            state.train = [r for r in state.train if r["id"] != ids[k % len(ids)]]
        else:
            rows = state.eval if what == "reorder eval" else state.train
            rng.shuffle(rows)
    return state


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=EDITS)
def test_harmless_edits_make_no_finding_new(fixture_repo, edits):
    repo, base = fixture_repo
    report = audit(repo, base, harmless(State(), edits))
    assert [(f.rule, f.row_id, f.message) for f in report.new_findings] == []
    assert report.status == "pass"
    assert {f.rule for f in report.findings} >= {"exact-duplicate", "invariance-flip-rate"}


def plant_copy(s: State):
    s.eval.append(eval_row(150, "e-copy", TRAIN[60]["question"]))
    s.predictions["e-copy"] = predictions_for(s.eval[-1])
    return {("exact-duplicate", "e-copy")}


def plant_model_label(s: State):
    s.eval.insert(7, eval_row(151, "e-ml", label_source="gpt-4o"))
    s.predictions["e-ml"] = predictions_for(s.eval[7])
    return {("model-label", "e-ml")}


def plant_flip(s: State):
    row = next(r for r in s.eval if r["id"] == "e-025")
    s.predictions["e-025"] = predictions_for(row, ("preamble",))
    return {("answer-flip", "e-025")}


def plant_old_row_copies_new_train_row(s: State):
    row = next(r for r in s.eval if r["id"] == "e-030")
    s.train.insert(3, {"id": "train-new", "question": row["question"], "answer": row["answer"],
                       "meta": dict(HUMAN)})
    return {("exact-duplicate", "e-030")}


def plant_disagreement(s: State):
    s.annotations.append(("e-020", "-7"))
    return {("label-disagreement", "e-020")}


def plant_row_without_predictions(s: State):
    s.eval.append(eval_row(152, "e-np"))
    return {("missing-prediction", "e-np")}


def plant_shared_generator(s: State):
    s.eval.append(eval_row(153, "e-g2", generator="synth-2"))
    s.predictions["e-g2"] = predictions_for(s.eval[-1])
    s.train.append({**train_row(600), "meta": {**HUMAN, "generator": "synth-2"}})
    return {("generated-eval-row", "e-g2"), ("shared-generator", "e-g2")}


def plant_more_rows_of_an_old_shared_generator(s: State):
    s.eval.append(eval_row(154, "e-g1", generator="synth-1"))
    s.predictions["e-g1"] = predictions_for(s.eval[-1])
    return {("generated-eval-row", "e-g1"), ("shared-generator", "e-gen")}


def plant_many_flips(s: State):
    for i in range(20, 32):      # 12 rows: the flip rate rises well beyond the margin
        row = next(r for r in s.eval if r["id"] == f"e-{i:03d}")
        s.predictions[row["id"]] = predictions_for(row, ("preamble",))
    return {("answer-flip", f"e-{i:03d}") for i in range(20, 32)} | {
        ("invariance-flip-rate", None)}


@pytest.mark.parametrize("plant", [
    plant_copy, plant_model_label, plant_flip, plant_old_row_copies_new_train_row,
    plant_disagreement, plant_row_without_predictions, plant_shared_generator,
    plant_more_rows_of_an_old_shared_generator, plant_many_flips], ids=lambda p: p.__name__)
def test_each_planted_change_makes_exactly_its_findings_new(fixture_repo, plant):
    repo, base = fixture_repo
    state = harmless(State(), [("reorder eval", 3)])    # also moved: lines do not matter
    expected = plant(state)
    report = audit(repo, base, state)
    assert {(f.rule, f.row_id) for f in report.new_findings} == expected
    assert len(report.new_findings) == len(expected)


# --- the bundled example as a pull request -------------------------------------------------------

EXAMPLE = ROOT / "examples/gsm8k"
COPIED_TRAIN_LINE = 501         # a train row no eval row copies yet
PARAPHRASE = ("To send his brother a care package at boarding school, Ken set a box on a scale "
              "and filled it with jelly beans until it weighed 2 pounds. Brownies then tripled "
              "the weight. He added 2 more pounds of jelly beans, and finally gummy worms "
              "doubled the weight again. How many pounds did the box of goodies weigh in the "
              "end?")


@pytest.fixture(scope="module")
def example(tmp_path_factory, request) -> tuple[Path, str, Path]:
    repo = tmp_path_factory.mktemp("example") / "gsm8k"
    shutil.copytree(EXAMPLE, repo)
    git_init(repo)
    cache = Path(request.config.cache.mkdir("eval-firewall-example-cache"))
    return repo, git_commit(repo, "the example as shipped"), cache


def example_pr(repo: Path, base: str, rows: list[dict], predicted: bool) -> None:
    git(repo, "checkout", "-q", "-f", base)
    git(repo, "clean", "-q", "-fdx")
    with open(repo / "data/eval/gsm8k-test.jsonl", "a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    if predicted:
        with open(repo / "predictions.jsonl", "a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(p) + "\n" for r in rows for p in predictions_for(r))


def example_audit(repo: Path, base: str, cache: Path):
    return run_audits(load_config(repo / ".eval-firewall.yml"), base=base, cache_dir=cache)


def clean_example_row() -> dict:
    shipped = (EXAMPLE / "data/eval/gsm8k-test.jsonl").read_text(encoding="utf-8")
    test = gsm8k("test")
    i = next(i for i in range(1000, len(test)) if test[i]["question"] not in shipped)
    return {"id": "eval-new-1", "question": test[i]["question"], "answer": test[i]["answer"],
            "meta": {"label_source": "human", "verified_by": "annotator-ana",
                     "generator": None}}


@pytest.mark.model
def test_example_a_pull_request_adding_one_clean_row_has_no_new_finding(example):
    repo, base, cache = example
    example_pr(repo, base, [clean_example_row()], predicted=True)
    report = example_audit(repo, base, cache)
    assert report.status == "pass"
    assert [(f.rule, f.message) for f in report.new_findings] == []
    assert verdict_line(report).startswith("✅ No new problems. ")      # the comment's first line
    # The example's old problems are all still reported, as existing.
    existing = {f.rule for f in report.findings}
    assert {"invariance-flip-rate", "same-generator", "label-disagreement",
            "exact-duplicate", "paraphrase"} <= existing

    # Without predictions for it, the only new finding is that one, about that row: a warning.
    example_pr(repo, base, [clean_example_row()], predicted=False)
    report = example_audit(repo, base, cache)
    assert report.status == "pass"
    assert [(f.rule, f.row_id, f.severity.value) for f in report.new_findings] == [
        ("missing-prediction", "eval-new-1", "warning")]
    assert verdict_line(report).startswith("✅ ")


@pytest.mark.model
def test_example_a_leaking_pull_request_has_exactly_its_two_findings_new(example):
    repo, base, cache = example
    train = (EXAMPLE / "data/train/gsm8k-train.jsonl").read_text("utf-8").splitlines()
    copied = json.loads(train[COPIED_TRAIN_LINE - 1])
    meta = {"label_source": "human", "verified_by": "annotator-ana", "generator": None}
    rows = [{"id": "eval-copy-1", "question": copied["question"], "answer": copied["answer"],
             "meta": meta},
            {"id": "eval-para-1", "question": PARAPHRASE, "answer": "#### 16", "meta": meta}]
    example_pr(repo, base, rows, predicted=True)
    report = example_audit(repo, base, cache)
    assert report.status == "fail"
    assert sorted((f.rule, f.row_id) for f in report.new_findings) == [
        ("exact-duplicate", "eval-copy-1"), ("paraphrase", "eval-para-1")]
    assert verdict_line(report).startswith(
        "❌ This pull request adds 2 leaked eval rows (1 exact copy, 1 paraphrase).")
    assert {f.fingerprint for f in report.failing()} == {
        f.fingerprint for f in report.new_findings}
