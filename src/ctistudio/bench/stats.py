"""The arithmetic of the benchmark: percentiles and the per-task summary of samples.

Pure functions, so the figures in a report can be checked exactly from the samples next to them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ctistudio.bench.models import Distribution, Sample


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def distribution(values: Iterable[float | None]) -> Distribution | None:
    """p50/p95/mean/min/max of the known values; ``None`` when there are none."""
    known = [float(v) for v in values if v is not None]
    if not known:
        return None
    return Distribution(
        n=len(known),
        p50=percentile(known, 50),
        p95=percentile(known, 95),
        mean=sum(known) / len(known),
        min=min(known),
        max=max(known),
    )


def mean(values: Iterable[float | None]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return sum(known) / len(known) if known else None


def rate(count: int | None, seconds: float | None) -> float | None:
    """``count`` per second, or ``None`` when either is unknown or the time is not positive."""
    if count is None or seconds is None or seconds <= 0:
        return None
    return count / seconds


def success_rate(samples: Sequence[Sample]) -> float:
    return sum(s.ok for s in samples) / len(samples) if samples else 0.0


def validity_rate(samples: Sequence[Sample]) -> float:
    answered = [s for s in samples if s.ok]
    return sum(s.valid for s in answered) / len(answered) if answered else 0.0


def quality_means(samples: Sequence[Sample]) -> dict[str, float]:
    """Each quality figure averaged over the answered samples that have it."""
    keys = sorted({k for s in samples if s.ok for k in s.quality})
    out = {}
    for key in keys:
        value = mean(s.quality.get(key) for s in samples if s.ok)
        if value is not None:
            out[key] = value
    return out


def end_to_end_tps(samples: Sequence[Sample]) -> float | None:
    """Completion tokens per second of wall time, over the answered samples (what a caller experiences)."""
    answered = [s for s in samples if s.ok and s.completion_tokens is not None and s.latency_s]
    tokens = sum(s.completion_tokens or 0 for s in answered)
    seconds = sum(s.latency_s or 0.0 for s in answered)
    return rate(tokens, seconds) if answered else None
