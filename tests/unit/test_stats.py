"""stats.py: the rate gate the disagreement and invariance audits share."""

from __future__ import annotations

import math

import pytest

from eval_firewall.audits.stats import fleiss_kappa, rate_gate, wilson


@pytest.mark.parametrize("count, n, limit, exceeded, undecided", [
    (30, 100, 0.15, True, False),     # 30%: above the limit
    (12, 100, 0.15, False, True),     # 12%, but the interval reaches past 15%
    (10, 1000, 0.15, False, False),   # 1%, interval well below 15%
])
def test_rate_gate(count, n, limit, exceeded, undecided):
    gate = rate_gate(count, n, limit)
    assert gate.rate == count / n
    assert (gate.low, gate.high) == wilson(count, n)
    assert gate.low <= gate.rate <= gate.high
    assert (gate.exceeded, gate.undecided) == (exceeded, undecided)


# Known values: Wilson (1927) intervals as tabulated by Newcombe (1998), Statistics in
# Medicine 17:857-872, table I (method 3): 81/263, 15/148, 0/20, 1/29.
@pytest.mark.parametrize("count, n, low, high", [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_published_intervals(count, n, low, high):
    got = wilson(count, n)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_matches_statsmodels_formula_everywhere():
    # statsmodels' proportion_confint(method="wilson"), written out as a reference.
    z = 1.959963984540054
    for n in (1, 2, 7, 50, 1000):
        for count in range(0, n + 1, max(1, n // 9)):
            p = count / n
            centre = (p + z * z / (2 * n)) / (1 + z * z / n)
            half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
            low, high = wilson(count, n)
            assert low == pytest.approx(max(0.0, centre - half), abs=1e-12) and (low == 0) == (count == 0)
            assert high == pytest.approx(min(1.0, centre + half), abs=1e-12) and (high == 1) == (count == n)
            assert 0.0 <= low <= p <= high <= 1.0


# Fleiss (1971) as worked on Wikipedia's "Fleiss' kappa" page: 10 subjects, 14 raters,
# 5 categories; each row is how many raters chose each category; kappa = 0.210.
FLEISS_TABLE = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
                [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
                [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def test_fleiss_kappa_matches_the_worked_example():
    ratings = [[c for c, times in enumerate(row) for _ in range(times)] for row in FLEISS_TABLE]
    assert fleiss_kappa(ratings) == pytest.approx(0.20993, abs=5e-5)


def test_fleiss_kappa_perfect_chance_and_undefined():
    assert fleiss_kappa([["a", "a"], ["b", "b"], ["c", "c"]]) == pytest.approx(1.0)
    # Two raters always disagreeing on two equally used categories: below chance.
    assert fleiss_kappa([["a", "b"], ["b", "a"]]) == pytest.approx(-1.0)
    assert math.isnan(fleiss_kappa([["x", "x", "x"], ["x", "x", "x"]]))
    with pytest.raises(ValueError):
        fleiss_kappa([["a", "b"], ["a"]])
