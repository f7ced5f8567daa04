"""Overlap audit: exact and near-duplicate eval rows, against train and inside the eval set."""

from __future__ import annotations

import pytest

from conftest import gsm8k
from eval_firewall.audits import overlap
from eval_firewall.cache import Cache
from eval_firewall.config import OverlapConfig
from eval_firewall.findings import AuditResult, Severity
from eval_firewall.inputs import Inputs
from eval_firewall.overlap.cached import CachedFinder
from eval_firewall.overlap.corpus import Corpus
from eval_firewall.overlap.finders import (
    HitFinder,
    MemoryFinder,
    lexical_similarity,
    near_matches,
    search_overlaps,
    self_matches,
)
from eval_firewall.rows import Row
from eval_firewall.text.normalize import normalize

TRAIN_Q = [r["question"] for r in gsm8k("train", 300)]
TEST_Q = [r["question"] for r in gsm8k("test", 60)]
NATALIA = TRAIN_Q[0]  # "Natalia sold clips to 48 of her friends in April, ..."


def rows(texts: list[str], dataset: str = "eval", role: str = "eval") -> list[Row]:
    path = f"data/{dataset}.jsonl"
    return [Row(dataset, role, path, i + 1, f"{path}:{i + 1}", t) for i, t in enumerate(texts)]


def train_rows(texts: list[str] = TRAIN_Q) -> list[Row]:
    return rows(texts, "train", "train")


def overlap_audit(evals: Corpus, train: Corpus, config: OverlapConfig, finder: HitFinder
                  ) -> AuditResult:
    """The overlap audit as the engine runs it: the search (its input), then the findings."""
    return overlap.audit(Inputs([], overlap=search_overlaps(evals, train, config, finder)), config)


def audit(evals: list[Row], train: list[Row], config: OverlapConfig) -> AuditResult:
    return overlap_audit(Corpus.of(evals), Corpus.of(train), config, MemoryFinder())


def cfg(contained: bool = True, **near) -> OverlapConfig:
    return OverlapConfig(near_duplicate=near, semantic={"enabled": False},
                         containment={"enabled": contained}, distribution={"enabled": False})


def by_rule(result, rule: str):
    return [f for f in result.findings if f.rule == rule]


def test_normalize_folds_unicode_case_whitespace_and_punctuation():
    assert normalize("  Ｎatalia  SOLD\tclips—to 48 friends!!  ") == \
        "natalia sold clips to 48 friends"
    assert normalize("ﬁve ½") == normalize("five 1⁄2")
    assert normalize("Straße") == normalize("STRASSE")


def test_human_gsm8k_test_questions_do_not_overlap_train():
    result = audit(rows(TEST_Q), train_rows(), cfg())
    assert result.findings == ()
    assert [(s.label, s.value) for s in result.stats] == [
        ("eval rows checked", 60), ("train rows indexed", 300),
        ("exact duplicates of train rows", 0), ("near-duplicates of train rows", 0),
        ("quoted inside train rows", 0), ("overlaps with the eval row's label in the train row", 0),
        ("duplicates inside the eval set", 0)]


@pytest.mark.parametrize("variant", [
    NATALIA,
    NATALIA.upper(),
    "  " + NATALIA.replace(" ", "\n  ").replace(",", " ;") + "  ",
    NATALIA.replace("Natalia", "Ｎａｔａｌｉａ"),  # full-width letters: NFKC
])
def test_exact_duplicates_after_normalization(variant: str):
    train = train_rows()
    result = audit(rows(TEST_Q[:5] + [variant]), train, cfg())
    [finding] = result.findings
    assert (finding.rule, finding.severity, finding.audit) == ("exact-duplicate", Severity.ERROR,
                                                               "overlap")
    assert (finding.path, finding.line, finding.row_id) == \
        ("data/eval.jsonl", 6, "data/eval.jsonl:6")
    assert finding.score == 1.0
    assert (finding.match.dataset, finding.match.path, finding.match.line, finding.match.row_id) \
        == ("train", "data/train.jsonl", 1, "data/train.jsonl:1")
    assert finding.message == "same text as train row data/train.jsonl:1"
    assert finding.text == variant and finding.match.text == NATALIA


@pytest.mark.parametrize("kind, variant", [
    ("changed numbers", NATALIA.replace("48", "52").replace("half", "a third")),
    ("reordered words", "In April Natalia sold clips to 48 of her friends, and then she sold "
                        "half as many clips in May. How many clips did Natalia sell altogether "
                        "in April and May?"),
    ("substituted words", NATALIA.replace("friends", "classmates").replace("clips", "pins")),
    ("typos", NATALIA.replace("clips", "clisp").replace("altogether", "altogeter")),
])
def test_near_duplicates_find_the_train_row_with_a_score(kind: str, variant: str):
    result = audit(rows(TEST_Q[:20] + [variant]), train_rows(), cfg())
    [finding] = result.findings
    assert finding.rule == "near-duplicate" and finding.severity is Severity.ERROR
    assert finding.line == 21
    assert finding.match.line == 1 and finding.match.dataset == "train"
    score = lexical_similarity(normalize(variant), normalize(NATALIA))
    assert 0.8 <= finding.score < 1.0 or kind == "reordered words"
    assert finding.score == round(score, 4)
    assert finding.message.endswith("similar to train row data/train.jsonl:1")


def test_threshold_is_inclusive():
    variant = NATALIA.replace("48", "52").replace("April", "June")
    score = lexical_similarity(normalize(variant), normalize(NATALIA))
    assert 0.8 < score < 1.0
    at = audit(rows([variant]), train_rows(), cfg(threshold=score))
    above = audit(rows([variant]), train_rows(), cfg(contained=False,
                                                     threshold=min(1.0, score + 1e-6)))
    assert [f.rule for f in at.findings] == ["near-duplicate"]
    assert above.findings == ()


def test_lower_threshold_flags_more_rows():
    variant = " ".join(NATALIA.split()[:12]) + " and then some more words about pencils"
    score = lexical_similarity(normalize(variant), normalize(NATALIA))
    assert 0.5 < score < 0.8
    assert audit(rows([variant]), train_rows(), cfg()).findings == ()
    assert [f.rule for f in audit(rows([variant]), train_rows(), cfg(threshold=0.5)).findings] \
        == ["near-duplicate"]


def test_the_best_train_match_is_reported():
    close = NATALIA.replace("48", "49")
    closer = NATALIA.replace("48", "47")
    train = train_rows(TRAIN_Q[1:40] + [NATALIA.replace("clips", "ribbons").replace("May", "June"),
                                       closer])
    [finding] = audit(rows([close]), train, cfg()).findings
    assert finding.match.text == closer and finding.match.line == 41


def test_a_near_duplicate_is_never_called_100_percent_similar():
    long_q = max(TRAIN_Q, key=len)
    middle = len(long_q) // 2
    variant = long_q[:middle] + "#x" + long_q[middle + 1:]  # one letter more
    score = lexical_similarity(normalize(variant), normalize(long_q))
    assert round(score, 2) == 1.0 and score < 1.0
    [finding] = audit(rows([variant]), train_rows(), cfg()).findings
    assert finding.rule == "near-duplicate"
    assert finding.message.startswith("99% similar to train row")


def test_one_overlap_finding_per_eval_row_the_strongest_kind():
    train = train_rows([NATALIA, NATALIA.replace("48", "49")] + TRAIN_Q[1:30])
    result = audit(rows([NATALIA]), train, cfg())
    assert [(f.rule, f.match.line) for f in result.findings] == [("exact-duplicate", 1)]


def test_exact_disabled_reports_copies_as_near_duplicates_and_near_disabled_only_exact():
    variant = NATALIA.replace("48", "52")
    no_exact = OverlapConfig(exact={"enabled": False}, semantic={"enabled": False},
                             distribution={"enabled": False})
    result = audit(rows([NATALIA, variant]), train_rows(), no_exact)
    assert [(f.rule, f.score) for f in by_rule(result, "near-duplicate")][0] == \
        ("near-duplicate", 1.0)
    assert len(by_rule(result, "near-duplicate")) == 2
    result = audit(rows([NATALIA, variant]), train_rows(), cfg(contained=False, enabled=False))
    assert [f.rule for f in result.findings if f.match.dataset == "train"] == ["exact-duplicate"]


def test_eval_duplicates_are_reported_once_per_pair_against_the_earlier_row():
    q1, q2 = TEST_Q[0], TEST_Q[1]
    evals = rows([q1, q2, q1.upper(), TEST_Q[2], q1 + " ", q2.replace("2 bolts", "3 bolts")])
    result = audit(evals, train_rows(), cfg())
    dups = by_rule(result, "eval-duplicate")
    assert [(f.line, f.match.line) for f in dups] == [(3, 1), (5, 1), (6, 2)]
    assert all(f.severity is Severity.WARNING for f in dups)
    assert dups[0].message == "same text as eval row data/eval.jsonl:1"
    assert dups[0].score == 1.0
    assert 0.8 <= dups[2].score < 1.0
    assert dups[2].message.endswith("similar to eval row data/eval.jsonl:2")
    assert dict((s.label, s.value) for s in result.stats)["duplicates inside the eval set"] == 3


def test_eval_duplicates_across_two_eval_datasets():
    evals = rows([TEST_Q[0]], "eval-a") + rows([TEST_Q[1], TEST_Q[0]], "eval-b")
    [dup] = audit(evals, [], cfg()).findings
    assert (dup.dataset, dup.line, dup.match.dataset, dup.match.line) == ("eval-b", 2, "eval-a", 1)


def test_within_eval_off_keeps_only_identical_eval_rows():
    q = TEST_Q[0]
    reordered = " ".join(reversed(q.split()))
    evals = rows([q, reordered, q.replace("16", "17"), q.lower()])
    result = audit(evals, [], cfg(within_eval=False))
    assert [(f.line, f.match.line, f.message) for f in result.findings] == \
        [(4, 1, "same text as eval row data/eval.jsonl:1")]


def test_nothing_to_compare():
    assert audit([], train_rows(), cfg()).findings == ()
    assert audit(rows([NATALIA]), [], cfg()).findings == ()


def test_near_matches_and_self_matches_directly():
    train = [normalize(t) for t in TRAIN_Q]
    evals = [normalize(NATALIA.replace("48", "52")), normalize(TEST_Q[0])]
    found = near_matches(evals, train, 0.8, k=10)
    assert list(found) == [0] and found[0][0] == 0
    assert near_matches(evals, train, 0.8, k=10, skip={0}) == {}
    norm = [normalize(t) for t in [TEST_Q[0], TEST_Q[1], TEST_Q[0]]]
    assert self_matches(norm, 0.8, 10) == {2: (0, 1.0)}


def test_near_duplicate_is_found_among_many_train_rows():
    train = train_rows([r["question"] for r in gsm8k("train", 3000)])
    target = train[2500].text
    variant = target.replace(" the ", " a ", 1) + " Explain."
    [finding] = audit(rows([variant]), train, cfg()).findings
    assert finding.rule == "near-duplicate" and finding.match.line == 2501


def test_rows_without_letters_or_digits_are_not_copies_of_each_other():
    evals = rows(["😀😀", "🎉", "???", TEST_Q[0], "!!!"])
    result = audit(evals, train_rows(TRAIN_Q[:30] + ["🙂", "..."]), cfg())
    assert result.findings == ()


def test_corpus_normalizes_once_and_fingerprints_by_content():
    train = train_rows(TRAIN_Q[:20])
    corpus = Corpus.of(train)
    assert corpus.norm == [normalize(r.text) for r in train] and len(corpus) == 20
    assert corpus.fingerprint == Corpus.of(train_rows(TRAIN_Q[:20])).fingerprint
    assert corpus.fingerprint != Corpus.of(train_rows(TRAIN_Q[1:21])).fingerprint
    assert corpus.fingerprint != Corpus.of(train_rows(TRAIN_Q[:19])).fingerprint
    part = corpus.subset([3, 1])
    assert [r.line for r in part.rows] == [4, 2] and part.norm == [corpus.norm[3], corpus.norm[1]]
    with pytest.raises(ValueError):
        Corpus(train, corpus.norm[:-1])


def test_cached_finder_finds_what_the_memory_finder_finds_and_searches_only_new_rows(tmp_path):
    variants = [NATALIA.upper(), TRAIN_Q[5].replace("$", "USD "), TRAIN_Q[7] + " Explain."]
    train = Corpus.of(train_rows())
    first = Corpus.of(rows(TEST_Q[:10] + variants))
    plain = overlap_audit(first, train, cfg(), MemoryFinder())
    assert len(plain.findings) >= 3

    def cached(evals: Corpus) -> tuple[AuditResult, dict[str, float]]:
        result = overlap_audit(evals, train, cfg(), CachedFinder(Cache(tmp_path / "cache")))
        return result, {s.label: s.value for s in result.stats}

    result, stats = cached(first)
    assert result.findings == plain.findings
    assert (stats["eval rows searched in this run"], stats["eval rows with a cached result"]) \
        == (13, 0)
    again, stats = cached(first)
    assert again.findings == plain.findings
    assert (stats["eval rows searched in this run"], stats["eval rows with a cached result"]) \
        == (0, 13)
    edited = Corpus.of(rows(TEST_Q[:10] + variants[:2] + [TRAIN_Q[9].lower()]))
    changed, stats = cached(edited)
    assert stats["eval rows searched in this run"] == 1
    assert changed.findings == overlap_audit(edited, train, cfg(), MemoryFinder()).findings
    assert changed.findings[-1].match.line == 10


def test_cached_finder_keeps_eval_duplicates_per_eval_set(tmp_path):
    texts = TEST_Q[:30] + [TEST_Q[3].upper(), TEST_Q[5].replace("?", " today?"), TEST_Q[8]]
    evals = Corpus.of(rows(texts))
    train = Corpus.of(train_rows(TRAIN_Q[:30]))
    full = self_matches(evals.norm, 0.8, 10)
    assert len(full) == 3
    first = CachedFinder(Cache(tmp_path / "cache")).find(evals, train, cfg())
    assert first.within == full == MemoryFinder().find(evals, train, cfg()).within
    entries = list((tmp_path / "cache" / "eval-duplicates").rglob("*.json"))
    assert len(entries) == 1
    again = CachedFinder(Cache(tmp_path / "cache")).find(evals, train, cfg())
    assert again.within == full
    assert CachedFinder(Cache(tmp_path / "cache")).find(evals, train,
                                                        cfg(within_eval=False)).within == \
        self_matches(evals.norm, None, 10)
