"""The arithmetic behind every figure of a report, on known inputs."""

from __future__ import annotations

import pytest

from ctistudio.bench.models import Sample
from ctistudio.bench.stats import (
    distribution,
    end_to_end_tps,
    percentile,
    quality_means,
    rate,
    success_rate,
    validity_rate,
)


def test_percentile_interpolates_between_closest_ranks():
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_distribution_ignores_unknown_values():
    dist = distribution([1.0, None, 3.0, 2.0])
    assert (dist.n, dist.p50, dist.mean, dist.min, dist.max) == (3, 2.0, 2.0, 1.0, 3.0)
    assert dist.p95 == pytest.approx(2.9)
    assert distribution([None, None]) is None


def test_rates_need_known_positive_times():
    assert rate(100, 2.0) == 50.0
    assert rate(None, 2.0) is None and rate(5, 0.0) is None and rate(5, None) is None


def test_success_validity_and_quality_count_answered_calls():
    samples = [
        Sample(ok=True, valid=True, latency_s=2.0, completion_tokens=40, quality={"score": 8.0}),
        Sample(ok=True, valid=False, latency_s=1.0, completion_tokens=20, quality={"score": 6.0, "rules": 2.0}),
        Sample(ok=False, error="refused", latency_s=0.1),
    ]
    assert success_rate(samples) == 2 / 3
    assert validity_rate(samples) == 0.5
    assert quality_means(samples) == {"rules": 2.0, "score": 7.0}
    assert end_to_end_tps(samples) == 60 / 3.0
    assert success_rate([]) == 0.0 and validity_rate([Sample(ok=False)]) == 0.0
