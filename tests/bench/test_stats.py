"""The statistics and scheduling rules, as plain functions (no TensorFlow)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keras_squeeze.bench import stats
from keras_squeeze.bench.settings import RunSettings
from keras_squeeze.errors import ConfigError


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101])
@pytest.mark.parametrize("q", [0, 5, 50, 90, 99, 100])
def test_percentile_is_numpy_linear(n, q):
    values = list(np.random.default_rng(n).exponential(size=n))
    assert stats.percentile(values, q) == pytest.approx(np.percentile(values, q), rel=1e-12)


def test_percentile_rejects_empty_and_out_of_range():
    with pytest.raises(ValueError, match="no values"):
        stats.percentile([], 50)
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        stats.percentile([1.0], 101)


def test_summarize_uses_population_std_like_benchmark_model():
    s = stats.summarize([1.0, 2.0, 3.0, 4.0])
    assert (s.count, s.mean_ms, s.min_ms, s.max_ms) == (4, 2.5, 1.0, 4.0)
    assert s.std_ms == pytest.approx(math.sqrt(1.25))  # divide by n, not n - 1
    assert (s.p50_ms, s.p90_ms, s.p99_ms) == pytest.approx((2.5, 3.7, 3.97))
    assert s.to_dict()["p90_ms"] == pytest.approx(3.7)
    with pytest.raises(ValueError, match="no timing samples"):
        stats.summarize([])


def test_center_falls_back_to_the_mean_without_percentiles():
    s = stats.LatencyStats(count=5, mean_ms=2.0, std_ms=0.1, min_ms=1.9, max_ms=2.2)
    assert s.p50_ms is None and s.center_ms == 2.0


def test_ratio_and_gap():
    assert stats.latency_ratio(1.0, 4.0) == 0.25
    assert stats.relative_gap(100.0, 104.0) == pytest.approx(0.04)
    assert stats.relative_gap(104.0, 100.0) == pytest.approx(0.04)
    with pytest.raises(ValueError, match="positive"):
        stats.latency_ratio(1.0, 0.0)


def test_round_order_rotates_so_every_model_leads_equally():
    orders = [stats.round_order(3, r) for r in range(6)]
    assert orders[:3] == [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
    firsts = [o[0] for o in orders]
    assert sorted(firsts) == [0, 0, 1, 1, 2, 2]
    assert all(sorted(o) == [0, 1, 2] for o in orders)


@pytest.mark.parametrize(
    "rounds, elapsed, expected",
    [
        (0, 0.0, True),
        (49, 5.0, True),  # runs missing
        (50, 0.5, True),  # time missing
        (50, 1.0, False),  # both reached
        (10, 151.0, False),  # past max_seconds: stop even before min_runs
    ],
)
def test_keep_running_is_benchmark_models_rule(rounds, elapsed, expected):
    assert stats.keep_running(rounds, elapsed, 50, 1.0, 150.0) is expected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"min_runs": 0},
            r"min_runs must be an integer >= 1\. Expected >= 1\. Received: min_runs=0",
        ),
        ({"min_runs": -3}, r"Received: min_runs=-3"),
        ({"min_runs": 2.5}, r"Received: min_runs=2\.5"),
        ({"warmup_runs": -1}, r"warmup_runs must be an integer >= 0.*Received: warmup_runs=-1"),
        ({"num_threads": 0}, r"num_threads must be an integer >= 1.*Received: num_threads=0"),
        ({"min_seconds": -1.0}, r"min_seconds must be a finite number of seconds >= 0"),
        ({"max_seconds": 0}, r"max_seconds must be a finite number of seconds > 0"),
        ({"min_seconds": float("nan")}, r"Received: min_seconds=nan"),
        ({"min_seconds": 5.0, "max_seconds": 2.0}, r"max_seconds is below min_seconds"),
    ],
)
def test_settings_reject_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RunSettings(**kwargs)


def test_settings_defaults_round_trip():
    s = RunSettings()
    assert RunSettings(**s.to_dict()) == s
