"""Statistics the rate gates share: Wilson intervals, and whether a rate passes its limit."""

from __future__ import annotations

from dataclasses import dataclass


def wilson(count: float, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of ``count`` successes in ``n`` trials."""
    from statsmodels.stats.proportion import proportion_confint  # slow to import: only here

    low, high = proportion_confint(count, n, alpha=0.05, method="wilson")
    return float(low), float(high)


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
