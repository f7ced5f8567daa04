"""Same-generator check: a classifier two-sample test on real data."""

from __future__ import annotations

import pytest

from conftest import BASIC_CONFIG, gsm8k
from eval_firewall.audits.distribution import check
from eval_firewall.config import DistributionConfig, load_config
from eval_firewall.engine import run_audits
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
    result = check(rows([r["question"] for r in TEST], "eval", "eval"),
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
    result = check(rows(answers, "eval", "eval"),
                   rows([r["question"] for r in TRAIN], "train", "train"),
                   DistributionConfig(), embedder=static_model)
    assert stat(result, "classifier AUC") > 0.9
    assert result.findings == ()
    assert result.verdict.startswith("The eval set is distinguishable")


def test_severity_is_configurable_and_off_keeps_the_verdict(static_model):
    evals = rows([r["question"] for r in TEST[:200]], "eval", "eval")
    train = rows([r["question"] for r in TRAIN[:400]], "train", "train")
    as_error = check(evals, train, DistributionConfig(severity="error"), embedder=static_model)
    assert [f.severity for f in as_error.findings] == [Severity.ERROR]
    off = check(evals, train, DistributionConfig(severity="off"), embedder=static_model)
    assert off.findings == () and "indistinguishable" in off.verdict
    strict = check(evals, train, DistributionConfig(max_auc=0.5), embedder=static_model)
    assert strict.findings == () or stat(strict, "classifier AUC") <= 0.5


def test_too_few_rows_skips_the_check(static_model):
    result = check(rows(["a question?"] * 10, "eval", "eval"),
                   rows([r["question"] for r in TRAIN[:500]], "train", "train"),
                   DistributionConfig(min_rows=50), embedder=static_model)
    assert result.skipped and "50" in result.skipped
    assert result.findings == () and result.stats == ()


ALL_ON = BASIC_CONFIG.replace("    semantic: {enabled: false}\n    distribution: {enabled: false}\n",
                              "    distribution: {min_rows: 50}\n")


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    """A per-user home with no static model, and no prebuilt one: distilling would write here."""
    home = tmp_path / "home"
    monkeypatch.setenv("EVAL_FIREWALL_HOME", str(home))
    monkeypatch.delenv("EVAL_FIREWALL_MODELS", raising=False)
    return home


@pytest.mark.model
def test_a_two_row_audit_distils_nothing(repo, empty_home):
    root = repo([{"question": TRAIN[0]["question"], "answer": "1"}],
                [{"question": TEST[0]["question"], "answer": "2"}], ALL_ON)
    report = run_audits(load_config(root / ".eval-firewall.yml"), cache_dir=None)
    check = next(a for a in report.audits if a.audit == "distribution")
    assert check.skipped and "needs at least 50 eval rows" in check.skipped
    assert not (empty_home / "static").exists()


@pytest.mark.model
def test_a_small_set_is_checked_with_the_full_model_without_distilling(repo, empty_home,
                                                                       tmp_path):
    root = repo([{"question": r["question"], "answer": "1"} for r in TRAIN[:120]],
                [{"question": r["question"], "answer": "1"} for r in TEST[:60]], ALL_ON)
    report = run_audits(load_config(root / ".eval-firewall.yml"), cache_dir=tmp_path / "c")
    check = next(a for a in report.audits if a.audit == "distribution")
    assert not check.skipped and stat(check, "rows compared") == 60
    assert 0.0 <= stat(check, "classifier AUC") <= 1.0
    assert not (empty_home / "static").exists()    # the full model did it: nothing distilled
