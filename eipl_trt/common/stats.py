"""Rolling latency and rate statistics (pure Python + numpy, thread-safe).

Used by the ROS node for its diagnostics and by scripts that report latency. Windows are
bounded, so memory stays constant however long the node runs:

* :class:`RollingStats` keeps the last ``window`` samples of one quantity (e.g. a stage's
  latency in seconds) and summarizes them as p50/p95/p99/max/mean (:class:`Summary`).
* :class:`RateMeter` keeps the timestamps (s) of the last events inside a time window and
  reports their rate in Hz.
* :class:`StageStats` is a named set of :class:`RollingStats` (one per pipeline stage).

Timestamps are plain floats in seconds from whatever clock the caller uses (``time.monotonic``,
or ROS time so that rates follow simulated time during bag replay).
"""

from __future__ import annotations

import itertools
import math
import statistics
import threading
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

__all__ = ["Summary", "RollingStats", "RateMeter", "StageStats"]


@dataclass(frozen=True)
class Summary:
    """Order statistics of the samples in a window (same unit as the samples, e.g. s).

    Attributes:
        count: samples in the window (0 = no data; then every statistic is NaN).
        total: samples ever added (including those that left the window).
        mean, p50, p95, p99, max: statistics over the window; percentiles interpolate linearly
            between order statistics (``numpy.percentile``'s default).
    """

    count: int
    total: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float

    def scaled(self, factor: float) -> "Summary":
        """The same summary with every statistic multiplied by ``factor`` (e.g. 1e3 for s -> ms)."""
        return Summary(
            self.count, self.total, self.mean * factor, self.p50 * factor, self.p95 * factor,
            self.p99 * factor, self.max * factor,
        )

    def format(self, unit: str = "ms", digits: int = 2) -> str:
        """``"p50 1.23 / p95 2.00 / p99 2.50 / max 3.10 ms (n=100)"``, or ``"no data"``."""
        if self.count == 0:
            return "no data"
        return (
            f"p50 {self.p50:.{digits}f} / p95 {self.p95:.{digits}f} / p99 {self.p99:.{digits}f} / "
            f"max {self.max:.{digits}f} {unit} (n={self.count})"
        )


_NAN = float("nan")
_EMPTY = Summary(0, 0, _NAN, _NAN, _NAN, _NAN, _NAN)


class RollingStats:
    """The last ``window`` samples of one quantity.

    Args:
        window: how many recent samples the statistics cover (>= 1).

    Raises:
        ValueError: ``window < 1``.
    """

    def __init__(self, window: int = 1000):
        if int(window) < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self._samples: deque[float] = deque(maxlen=int(window))
        self._total = 0
        self._lock = threading.Lock()

    @property
    def window(self) -> int:
        """Maximum number of samples kept."""
        return int(self._samples.maxlen or 0)

    def add(self, value: float) -> None:
        """Record one sample. Non-finite values are ignored (they would poison every percentile)."""
        v = float(value)
        if not math.isfinite(v):
            return
        with self._lock:
            self._samples.append(v)
            self._total += 1

    def extend(self, values: Iterable[float]) -> None:
        """Record several samples."""
        for v in values:
            self.add(v)

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def total(self) -> int:
        """Samples ever added."""
        return self._total

    def last(self) -> float:
        """The most recent sample, or NaN when empty."""
        with self._lock:
            return self._samples[-1] if self._samples else _NAN

    def summary(self) -> Summary:
        """Statistics over the current window."""
        with self._lock:
            if not self._samples:
                return Summary(0, self._total, _NAN, _NAN, _NAN, _NAN, _NAN)
            data = np.fromiter(self._samples, dtype=np.float64, count=len(self._samples))
            total = self._total
        p50, p95, p99 = np.percentile(data, [50.0, 95.0, 99.0])
        return Summary(int(data.size), total, float(data.mean()), float(p50), float(p95), float(p99), float(data.max()))

    def clear(self) -> None:
        """Forget the window (the total is kept)."""
        with self._lock:
            self._samples.clear()


class RateMeter:
    """Event rate over a sliding time window.

    Args:
        window_s: length of the window in seconds (> 0).
        max_events: cap on the events kept (bounds memory at very high rates).

    Raises:
        ValueError: non-positive ``window_s`` or ``max_events``.
    """

    def __init__(self, window_s: float = 5.0, max_events: int = 10000):
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        if int(max_events) < 2:
            raise ValueError(f"max_events must be >= 2, got {max_events}")
        self.window_s = float(window_s)
        self._times: deque[float] = deque(maxlen=int(max_events))
        self._count = 0
        self._lock = threading.Lock()

    def tick(self, t: float) -> None:
        """Record an event at time ``t`` (s). A time earlier than the last event (a clock that
        jumped backwards, e.g. a looping bag) restarts the window."""
        t = float(t)
        with self._lock:
            if self._times and t < self._times[-1]:
                self._times.clear()
            self._times.append(t)
            self._count += 1

    @property
    def count(self) -> int:
        """Events ever recorded."""
        return self._count

    def last(self) -> float | None:
        """Time (s) of the most recent event, or ``None``."""
        with self._lock:
            return self._times[-1] if self._times else None

    def rate_hz(self, now: float) -> float:
        """Events per second over ``[now - window_s, now]``; 0.0 with fewer than two events there.

        The rate is ``(n - 1) / (t_last - t_first)`` over the events in the window, so a steady
        10 Hz stream reads 10.0 as soon as two events are in; when the events stop, the rate
        drops to 0 once fewer than two remain in the window.
        """
        with self._lock:
            cutoff = float(now) - self.window_s
            while self._times and self._times[0] < cutoff:
                self._times.popleft()
            if len(self._times) < 2:
                return 0.0
            span = self._times[-1] - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def recent_period_s(self, n: int = 8) -> float:
        """Median interval (s) between the last ``n + 1`` events; NaN with fewer than three events.

        Unlike :meth:`rate_hz` it follows a change of rate within a few events, and a pause (a camera
        restarted, a gap between runs) moves it by nothing: one long interval is not the median.
        """
        with self._lock:
            newest_first = list(itertools.islice(reversed(self._times), int(n) + 1))
        if len(newest_first) < 3:
            return float("nan")
        return statistics.median(a - b for a, b in zip(newest_first, newest_first[1:]))

    def clear(self) -> None:
        """Forget the window (the count is kept)."""
        with self._lock:
            self._times.clear()


class StageStats:
    """One :class:`RollingStats` per named stage, created on first use.

    Args:
        window: samples per stage.
    """

    def __init__(self, window: int = 1000):
        self.window = int(window)
        self._stages: dict[str, RollingStats] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, value: float) -> None:
        """Record one sample for ``stage``."""
        with self._lock:
            stats = self._stages.get(stage)
            if stats is None:
                stats = self._stages[stage] = RollingStats(self.window)
        stats.add(value)

    def add_many(self, values: Mapping[str, float]) -> None:
        """Record one sample for each stage in ``values``."""
        for stage, value in values.items():
            self.add(stage, value)

    def names(self) -> list[str]:
        """Stage names in the order they were first seen."""
        with self._lock:
            return list(self._stages)

    def summary(self, stage: str) -> Summary:
        """The summary of ``stage`` (an empty summary for an unknown stage)."""
        with self._lock:
            stats = self._stages.get(stage)
        return stats.summary() if stats is not None else _EMPTY

    def summaries(self) -> dict[str, Summary]:
        """Stage name -> summary, in first-seen order."""
        with self._lock:
            items = list(self._stages.items())
        return {name: stats.summary() for name, stats in items}

    def clear(self) -> None:
        """Empty every stage's window."""
        with self._lock:
            items = list(self._stages.values())
        for stats in items:
            stats.clear()
