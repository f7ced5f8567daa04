"""Same-generator check: a classifier two-sample test on real data."""

from __future__ import annotations

from conftest import gsm8k
from eval_firewall.audits.distribution import audit
from eval_firewall.config import DistributionConfig
from eval_firewall.findings import Severity
from eval_firewall.rows import Row

TRAIN = gsm8k("train", 1600)
TEST = gsm8k("test", 600)


def rows(texts: list[str], dataset: str, role: str) -> list[Row]:
    path = f"data/{dataset}.jsonl"
    return [Row(dataset, role, path, i + 1, str(i + 1), t) for i, t in enumerate(texts)]


def stat(result, prefix: str):
    return next(s.value for s in result.stats if s.label.startswith(prefix))


def test_gsm8k_test_and_train_come_from_the_same_process(static_model):
    """GSM8K's test and train splits were written the same way: indistinguishable."""
    result = audit(rows([r["question"] for r in TEST], "eval", "eval"),
                   rows([r["question"] for r in TRAIN], "train", "train"),
                   DistributionConfig(), embedder=static_model)
    auc = stat(result, "classifier AUC")
    assert 0.4 <= auc <= 0.6
    assert abs(stat(result, "eval to nearest") - stat(result, "held-out train")) < 0.03
    [finding] = result.findings
    assert finding.rule == "same-generator" and finding.severity == Severity.WARNING
    assert round(finding.score, 3) == auc and finding.dataset == "eval"
    assert "indistinguishable" in result.verdict and "same generator" in result.verdict


def test_a_different_distribution_is_told_apart(static_model):
    """Worked solutions are not questions: the classifier separates them almost perfectly."""
    answers = [r["answer"].split("####")[0] for r in TEST]
    result = audit(rows(answers, "eval", "eval"),
                   rows([r["question"] for r in TRAIN], "train", "train"),
                   DistributionConfig(), embedder=static_model)
    assert stat(result, "classifier AUC") > 0.9
    assert result.findings == []
    assert result.verdict.startswith("The eval set is distinguishable")


def test_severity_is_configurable_and_off_keeps_the_verdict(static_model):
    evals = rows([r["question"] for r in TEST[:200]], "eval", "eval")
    train = rows([r["question"] for r in TRAIN[:400]], "train", "train")
    as_error = audit(evals, train, DistributionConfig(severity="error"), embedder=static_model)
    assert [f.severity for f in as_error.findings] == [Severity.ERROR]
    off = audit(evals, train, DistributionConfig(severity="off"), embedder=static_model)
    assert off.findings == [] and "indistinguishable" in off.verdict
    strict = audit(evals, train, DistributionConfig(max_auc=0.5), embedder=static_model)
    assert strict.findings == [] or stat(strict, "classifier AUC") <= 0.5


def test_too_few_rows_skips_the_check(static_model):
    result = audit(rows(["a question?"] * 10, "eval", "eval"),
                   rows([r["question"] for r in TRAIN[:500]], "train", "train"),
                   DistributionConfig(min_rows=50), embedder=static_model)
    assert result.skipped and "50" in result.skipped
    assert result.findings == [] and result.stats == []
