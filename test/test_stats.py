"""Tests for eipl_trt.common.stats: rolling percentiles, rates and per-stage summaries."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from eipl_trt.common.stats import RateMeter, RollingStats, StageStats, Summary


def test_summary_matches_numpy_percentiles() -> None:
    rng = np.random.default_rng(0)
    data = rng.exponential(0.002, size=500)
    stats = RollingStats(window=1000)
    stats.extend(data)
    s = stats.summary()
    p50, p95, p99 = np.percentile(data, [50, 95, 99])
    assert s.count == 500 and s.total == 500
    assert s.p50 == pytest.approx(p50) and s.p95 == pytest.approx(p95) and s.p99 == pytest.approx(p99)
    assert s.max == pytest.approx(data.max()) and s.mean == pytest.approx(data.mean())
    assert s.p50 <= s.p95 <= s.p99 <= s.max


def test_window_keeps_only_recent_samples() -> None:
    stats = RollingStats(window=10)
    stats.extend(range(100))
    s = stats.summary()
    assert s.count == 10 and s.total == 100
    assert s.max == 99.0 and s.p50 == pytest.approx(94.5)
    assert stats.last() == 99.0
    stats.clear()
    assert stats.summary().count == 0 and stats.summary().total == 100


def test_empty_and_non_finite() -> None:
    stats = RollingStats(window=5)
    assert stats.summary().count == 0 and math.isnan(stats.summary().p99)
    assert stats.summary().format() == "no data"
    stats.add(float("nan"))
    stats.add(float("inf"))
    assert len(stats) == 0
    stats.add(0.001)
    assert stats.summary().scaled(1e3).max == pytest.approx(1.0)
    assert "p99 1.00" in stats.summary().scaled(1e3).format("ms")


def test_bad_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="window must be >= 1"):
        RollingStats(window=0)
    with pytest.raises(ValueError, match="window_s must be > 0"):
        RateMeter(window_s=0.0)


def test_rate_meter_steady_stream_and_dropout() -> None:
    meter = RateMeter(window_s=2.0)
    for i in range(50):
        meter.tick(i * 0.1)  # 10 Hz for 4.9 s
    assert meter.rate_hz(4.9) == pytest.approx(10.0)
    assert meter.count == 50 and meter.last() == pytest.approx(4.9)
    # Nothing arrives after 4.9 s: once the window has passed, the rate is 0.
    assert meter.rate_hz(7.0) == 0.0


def test_rate_meter_restarts_when_time_goes_backwards() -> None:
    meter = RateMeter(window_s=5.0)
    for i in range(10):
        meter.tick(100.0 + i * 0.5)
    meter.tick(1.0)  # a looping bag restarted its clock
    assert meter.rate_hz(1.0) == 0.0
    meter.tick(1.5)
    assert meter.rate_hz(1.5) == pytest.approx(2.0)


def test_stage_stats_named_and_thread_safe() -> None:
    stages = StageStats(window=10000)

    def worker() -> None:
        for _ in range(1000):
            stages.add_many({"preprocess": 0.001, "inference": 0.002})

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    summaries = stages.summaries()
    assert list(summaries) == ["preprocess", "inference"]
    assert summaries["inference"].count == 4000
    assert summaries["inference"].p99 == pytest.approx(0.002)
    assert isinstance(stages.summary("unknown"), Summary) and stages.summary("unknown").count == 0
    stages.clear()
    assert stages.summary("preprocess").count == 0


def test_recent_period_follows_a_new_rate_within_a_few_events_and_ignores_a_pause() -> None:
    from eipl_trt.common.stats import RateMeter

    meter = RateMeter(window_s=5.0)
    assert math.isnan(meter.recent_period_s())
    t = 0.0
    for _ in range(30):
        t += 1 / 30
        meter.tick(t)
    assert meter.recent_period_s() == pytest.approx(1 / 30)
    t += 2.0  # a pause: one long interval is not the median
    for _ in range(3):
        t += 1 / 30
        meter.tick(t)
    assert meter.recent_period_s() == pytest.approx(1 / 30)
    assert meter.rate_hz(t) < 0.9 * 30  # the windowed rate still remembers the pause
    for _ in range(5):  # a 200 Hz burst
        t += 1 / 200
        meter.tick(t)
    assert meter.recent_period_s() == pytest.approx(1 / 200)
