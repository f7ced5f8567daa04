"""Statistics the gates share: Wilson intervals, whether a rate passes its limit, Fleiss' kappa."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

# The two-sided 95% normal quantile, scipy.stats.norm.ppf(0.975) to double precision.
Z95 = 1.959963984540054


def wilson(count: float, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of ``count`` successes in ``n`` trials (Wilson 1927;
    the formula of statsmodels' ``proportion_confint(method="wilson")``)."""
    p = count / n
    z2 = Z95 * Z95
    denominator = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if count <= 0 else max(0.0, center - half)     # exact ends, not rounding noise
    high = 1.0 if count >= n else min(1.0, center + half)
    return low, high


def fleiss_kappa(ratings: Sequence[Sequence[Hashable]]) -> float:
    """Fleiss' kappa (Fleiss 1971) of subjects (rows) each rated by the same number of raters
    (columns) into categories (any hashable values); nan when every rating is one category."""
    categories = {c: i for i, c in enumerate(dict.fromkeys(c for row in ratings for c in row))}
    raters = len(ratings[0]) if ratings else 0
    if not ratings or raters < 2 or any(len(row) != raters for row in ratings):
        raise ValueError("every subject needs the same number (two or more) of ratings")
    import numpy as np

    counts = np.zeros((len(ratings), len(categories)))
    for i, row in enumerate(ratings):
        for c in row:
            counts[i, categories[c]] += 1
    shares = counts.sum(axis=0) / counts.sum()
    agreement = ((counts * counts).sum(axis=1) - raters) / (raters * (raters - 1))
    expected = float((shares * shares).sum())
    if expected == 1.0:
        return math.nan
    return (float(agreement.mean()) - expected) / (1 - expected)


def answers_needed(rate: float, threshold: float, limit: int = 10_000_000) -> int | None:
    """Fewest answers at ``rate`` whose 95% Wilson interval lies below ``threshold``."""
    if rate >= threshold:
        return None
    if wilson(rate * limit, limit)[1] >= threshold:
        return None
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi) // 2
        if wilson(rate * mid, mid)[1] < threshold:
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass(frozen=True, slots=True)
class RateGate:
    """A rate of ``count`` in ``n`` against a limit, with its 95% Wilson interval."""

    rate: float
    low: float
    high: float
    limit: float

    @property
    def exceeded(self) -> bool:
        """The rate is above the limit: the gate fails."""
        return self.rate > self.limit

    @property
    def undecided(self) -> bool:
        """Within the limit, but the interval still includes it: too few answers to tell."""
        return not self.exceeded and self.high > self.limit


def rate_gate(count: int, n: int, limit: float) -> RateGate:
    """The gate of ``count`` events in ``n`` (n > 0) against ``limit``."""
    low, high = wilson(count, n)
    return RateGate(count / n, low, high, limit)
