"""Provenance audit: model labels, unverified labels, generated rows, shared generators,
machine-generated dataset cards, and rows with no provenance."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import gsm8k, write_jsonl
from eval_firewall.audits.provenance import check
from eval_firewall.config import ProvenanceConfig, parse_config
from eval_firewall.datasets import load_dataset
from eval_firewall.findings import Severity

PROVENANCE = """    provenance:
      label_source: meta.label_source
      verified_by: meta.verified_by
      generator: meta.generator
"""


def gsm(split: str, metas: list[dict | None]) -> list[dict]:
    out = []
    for row, meta in zip(gsm8k(split, len(metas)), metas):
        out.append({**row, "meta": meta} if meta is not None else dict(row))
    return out


HUMAN = {"label_source": "human", "verified_by": "annotator-7"}


def run(tmp_path: Path, eval_metas: list[dict | None], train_metas: list[dict | None] = (),
        *, eval_provenance: str = PROVENANCE, train_provenance: str = PROVENANCE,
        card: str | None = None, **cfg):
    write_jsonl(tmp_path / "data/eval/eval.jsonl", gsm("test", eval_metas))
    write_jsonl(tmp_path / "data/train/train.jsonl", gsm("train", list(train_metas)) or
                gsm("train", [None]))
    if card is not None:
        (tmp_path / "data/eval/README.md").write_text(card, encoding="utf-8")
    config = parse_config(
        "datasets:\n"
        "  - name: train\n    role: train\n    paths: [data/train/*.jsonl]\n    text: question\n"
        + train_provenance +
        "  - name: eval\n    role: eval\n    paths: [data/eval/*.jsonl]\n    text: question\n"
        "    label: answer\n" + eval_provenance,
        source=".eval-firewall.yml", root=tmp_path)
    loaded = [load_dataset(config, d) for d in config.datasets]
    return check(loaded, ProvenanceConfig(**cfg))


def summary(result) -> list[tuple]:
    return [(f.rule, f.severity.value, f.path, f.line) for f in result.findings]


def stats(result) -> dict:
    return {s.label: s.value for s in result.stats}


def test_human_written_verified_rows_pass(tmp_path: Path):
    result = run(tmp_path, [HUMAN, {"label_source": "Human ", "verified_by": "b"}])
    assert result.findings == ()
    assert stats(result) == {"eval rows with a model label": 0,
                             "eval rows with an unverified label": 0,
                             "eval rows made by a generator": 0,
                             "eval rows with no provenance": 0,
                             "generators shared by train and eval": 0}


def test_model_label(tmp_path: Path):
    result = run(tmp_path, [HUMAN, {"label_source": "gpt-4o", "verified_by": "annotator-7"}])
    [finding] = result.findings
    assert summary(result) == [("model-label", "error", "data/eval/eval.jsonl", 2)]
    assert finding.audit == "provenance" and finding.dataset == "eval"
    assert finding.row_id == "data/eval/eval.jsonl:2"
    assert finding.message == ("label written by 'gpt-4o', not by a human: model-written gold "
                               "labels are circular validation (if it is a person, add it to "
                               "audits.provenance.human_label_sources)")
    assert stats(result)["eval rows with a model label"] == 1


def test_an_unverified_model_label_is_one_finding(tmp_path: Path):
    result = run(tmp_path, [{"label_source": "gpt-4o", "verified_by": ""}])
    [finding] = result.findings
    assert finding.rule == "model-label"
    assert finding.message == ("label written by 'gpt-4o', not by a human and no human "
                               "verified it: model-written gold labels are circular validation "
                               "(if it is a person, add it to "
                               "audits.provenance.human_label_sources)")
    assert stats(result)["eval rows with a model label"] == 1
    assert stats(result)["eval rows with an unverified label"] == 0


@pytest.mark.parametrize("source", ["human-written", "Human_Written", "HUMAN WRITTEN",
                                    "human-annotated", "expert-generated", "Expert_Generated",
                                    "crowdsourced", " Crowdsourced "])
def test_people_sources_count_as_human_by_default(tmp_path: Path, source: str):
    """The Hugging Face card values for people, and human-written/-annotated, are human by
    default; case, '-', '_' and spaces do not matter."""
    result = run(tmp_path, [{"label_source": source, "verified_by": "ana"}])
    assert result.findings == ()


def test_configured_sources_match_case_and_separators_alike(tmp_path: Path):
    metas = [{"label_source": "Domain-Expert", "verified_by": "x"},
             {"label_source": "domain expert", "verified_by": "x"},
             {"label_source": "machine-generated", "verified_by": "x"}]
    result = run(tmp_path, metas, human_label_sources=["domain_expert"])
    assert summary(result) == [("model-label", "error", "data/eval/eval.jsonl", 3)]
    assert "audits.provenance.human_label_sources" in result.findings[0].message


def test_human_label_sources_are_configurable(tmp_path: Path):
    metas = [{"label_source": "expert", "verified_by": "x"}, {"label_source": "crowd",
                                                              "verified_by": "x"}]
    assert [f.line for f in run(tmp_path, metas).findings] == [1, 2]
    result = run(tmp_path, metas, human_label_sources=["Expert", "crowd"])
    assert result.findings == ()


def test_unverified_label(tmp_path: Path):
    result = run(tmp_path, [
        {"label_source": "human", "verified_by": ""},     # nobody verified
        {"verified_by": "annotator-7"},                    # label source not recorded
        {"label_source": "human"},                         # verified_by missing
        HUMAN,
    ])
    assert summary(result) == [("unverified-label", "error", "data/eval/eval.jsonl", 1),
                               ("unverified-label", "error", "data/eval/eval.jsonl", 2),
                               ("unverified-label", "error", "data/eval/eval.jsonl", 3)]
    assert [f.message for f in result.findings] == [
        "label was not verified by a human (verified_by is empty)",
        "label source is not recorded, so the label cannot be shown to be human-written",
        "label was not verified by a human (verified_by is empty)"]
    assert stats(result)["eval rows with an unverified label"] == 3


def test_a_row_with_neither_label_source_nor_verifier_gets_one_unverified_finding(tmp_path):
    result = run(tmp_path, [{"generator": "self-instruct"}], allow_generated_eval=True)
    assert [f.rule for f in result.findings] == ["unverified-label"]


def test_verification_is_only_required_when_the_field_is_mapped(tmp_path: Path):
    mapping = "    provenance:\n      label_source: meta.label_source\n"
    result = run(tmp_path, [{"label_source": "human"}], eval_provenance=mapping)
    assert result.findings == ()


def test_generated_eval_row_and_allow_generated_eval(tmp_path: Path):
    metas = [{**HUMAN, "generator": "llama-3-70b"}, HUMAN]
    result = run(tmp_path, metas)
    assert summary(result) == [("generated-eval-row", "error", "data/eval/eval.jsonl", 1)]
    assert result.findings[0].message.startswith("eval row generated by 'llama-3-70b': ")
    assert "allow_generated_eval" in result.findings[0].message
    assert stats(result)["eval rows made by a generator"] == 1
    # Allowed: synthetic prompts with human-verified labels are legitimate.
    assert run(tmp_path, metas, allow_generated_eval=True).findings == ()


def test_allowing_generated_rows_does_not_allow_model_labels(tmp_path: Path):
    metas = [{"label_source": "llama-3-70b", "verified_by": "x", "generator": "llama-3-70b"}]
    result = run(tmp_path, metas, allow_generated_eval=True)
    assert [f.rule for f in result.findings] == ["model-label"]


def test_shared_generator(tmp_path: Path):
    eval_metas = [{**HUMAN, "generator": "GPT-4o "}, {**HUMAN, "generator": "gpt-4o"}, HUMAN]
    train_metas = [{"generator": "claude"}, {"generator": "gpt-4o"}, {"generator": "gpt-4o"}]
    result = run(tmp_path, eval_metas, train_metas, allow_generated_eval=True)
    [finding] = result.findings
    assert (finding.rule, finding.severity, finding.path, finding.line) == \
        ("shared-generator", Severity.ERROR, "data/eval/eval.jsonl", 1)
    assert finding.count == 2
    assert finding.message.startswith("generator 'GPT-4o' produced 2 eval rows and 2 train rows")
    assert (finding.match.dataset, finding.match.path, finding.match.line) == \
        ("train", "data/train/train.jsonl", 2)
    assert stats(result)["generators shared by train and eval"] == 1


def test_a_generator_only_in_eval_or_only_in_train_is_not_shared(tmp_path: Path):
    result = run(tmp_path, [{**HUMAN, "generator": "a"}], [{"generator": "b"}],
                 allow_generated_eval=True)
    assert result.findings == ()


@pytest.mark.parametrize("value", ["machine-generated", "[crowdsourced, machine-generated]",
                                   "\n  - expert-generated\n  - Machine-Generated"])
def test_machine_generated_card_next_to_eval_data(tmp_path: Path, value: str):
    card = f"---\nlanguage:\n- en\nannotations_creators: {value}\n---\n# Card\n"
    result = run(tmp_path, [HUMAN], card=card)
    [finding] = result.findings
    assert (finding.rule, finding.severity, finding.dataset, finding.path, finding.line) == \
        ("machine-generated-card", Severity.ERROR, "eval", "data/eval/README.md", 4)
    assert finding.message == ("the dataset card declares 'annotations_creators: "
                               "machine-generated' for an eval dataset")


def test_human_card_and_train_cards_pass(tmp_path: Path):
    card = "---\nannotations_creators: [expert-generated, crowdsourced]\n---\n"
    assert run(tmp_path, [HUMAN], card=card).findings == ()
    # A machine-generated card for the train data is fine.
    (tmp_path / "data/train").mkdir(parents=True, exist_ok=True)
    (tmp_path / "data/train/README.md").write_text(
        "---\nannotations_creators: machine-generated\n---\n", encoding="utf-8")
    assert run(tmp_path, [HUMAN]).findings == ()


def test_missing_provenance_is_one_aggregate_warning_by_default(tmp_path: Path):
    result = run(tmp_path, [None, None, HUMAN, None], eval_provenance="")
    [finding] = result.findings
    assert (finding.rule, finding.severity, finding.path, finding.line, finding.count) == \
        ("missing-provenance", Severity.WARNING, "data/eval/eval.jsonl", 1, 4)
    assert finding.row_id is None
    assert finding.message == ("4 of 4 eval rows record no provenance (the dataset config maps "
                               "no provenance fields); first at data/eval/eval.jsonl:1")
    assert stats(result)["eval rows with no provenance"] == 4


def test_missing_provenance_when_mapped_fields_are_all_empty(tmp_path: Path):
    result = run(tmp_path, [HUMAN, None, {"label_source": None}, HUMAN])
    [finding] = result.findings
    assert finding.count == 2 and finding.line == 2
    assert finding.message == ("2 of 4 eval rows record no provenance (none of the provenance "
                               "fields are set); first at data/eval/eval.jsonl:2")


def test_missing_provenance_per_row_severity_and_off(tmp_path: Path):
    result = run(tmp_path, [None, HUMAN, None], missing_per_row=True, missing="error")
    assert summary(result) == [("missing-provenance", "error", "data/eval/eval.jsonl", 1),
                               ("missing-provenance", "error", "data/eval/eval.jsonl", 3)]
    assert result.findings[0].row_id == "data/eval/eval.jsonl:1"
    assert result.findings[0].message == "row records no provenance"
    result = run(tmp_path, [None, HUMAN, None], missing="off")
    assert result.findings == ()
    assert stats(result)["eval rows with no provenance"] == 0


def test_train_rows_without_provenance_are_not_findings(tmp_path: Path):
    result = run(tmp_path, [HUMAN], [None, None], train_provenance="")
    assert result.findings == ()


def test_every_rule_in_one_realistic_eval_set(tmp_path: Path):
    eval_metas = [HUMAN,
                  {"label_source": "gpt-4o", "verified_by": "x"},
                  {"label_source": "human", "verified_by": None},
                  {**HUMAN, "generator": "mixtral"},
                  None]
    card = "---\nannotations_creators: machine-generated\n---\n"
    result = run(tmp_path, eval_metas, [{"generator": "mixtral"}], card=card)
    assert sorted(f.rule for f in result.findings) == sorted([
        "model-label", "unverified-label", "generated-eval-row", "missing-provenance",
        "machine-generated-card", "shared-generator"])
