"""stats.py: the rate gate the disagreement and invariance audits share."""

from __future__ import annotations

import pytest

from eval_firewall.stats import rate_gate, wilson


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
