"""The power-monitor interface, energy integration and energy-per-step arithmetic (pure Python).

Every source (INA3221 sysfs, jtop, NVML) is a :class:`PowerMonitor`: ``start()`` acquires the
sensor, ``read()`` returns a :class:`PowerSample` (time in s, power in W, energy in J since
``start()``), ``stop()`` releases it. Sources that only report instantaneous power derive from
:class:`SampledPowerMonitor`, which integrates power over time in a sampler thread (and on every
``read()``), using the trapezoidal rule between consecutive samples.

Energy per inference step is Δenergy / Δsteps over a window of many steps, optionally minus an
idle baseline (idle power x window duration); see :func:`energy_per_step_j` and
:class:`StepEnergyMeter`. Power counters update every 6 ms (INA3221) to 1 s (NVML power average),
so never divide a single step's energy; use windows of seconds.
"""

from __future__ import annotations

import abc
import logging
import math
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Callable

from eipl_trt.errors import EipltrtError, InputError

__all__ = [
    "Clock",
    "PowerSample",
    "PowerMonitor",
    "SampledPowerMonitor",
    "energy_per_step_j",
    "measure_idle_power_w",
    "StepEnergyMeter",
]

_LOG = logging.getLogger(__name__)

#: A monotonic clock returning seconds (``time.monotonic`` unless a test injects its own).
Clock = Callable[[], float]


@dataclass(frozen=True)
class PowerSample:
    """One reading of a :class:`PowerMonitor`.

    Attributes:
        timestamp_s: when the reading was taken, on the monitor's clock, s.
        power_w: the latest power reading, W (NaN if the source has none).
        energy_j: energy consumed since the monitor was started, J.
    """

    timestamp_s: float
    power_w: float
    energy_j: float


class PowerMonitor(abc.ABC):
    """A started-on-demand power/energy source. Thread-safe: any thread may call ``read()``.

    Attributes:
        source: what is measured, e.g. ``"ina3221:VDD_IN"``, ``"jtop:VDD_IN"``, ``"nvml:gpu0:energy"``.
        available: always True for a real monitor (the factory returns None when there is none).
    """

    source: str = "unknown"
    available: bool = True

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock if clock is not None else time.monotonic
        self._lock = threading.Lock()
        self._running = False

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._running

    @abc.abstractmethod
    def start(self) -> None:
        """Acquire the sensor and zero the energy count. Starting a running monitor does nothing.

        Raises:
            BackendUnavailableError: the source cannot be read on this machine.
        """

    @abc.abstractmethod
    def stop(self) -> None:
        """Release the sensor (and stop any sampler thread). Safe to call twice."""

    @abc.abstractmethod
    def read(self) -> PowerSample:
        """Take a reading now: time (s), latest power (W) and energy since :meth:`start` (J).

        Raises:
            EipltrtError: the monitor is not running (call :meth:`start` first).
        """

    def energy_since(self, mark: PowerSample) -> float:
        """Energy consumed between ``mark`` (an earlier :meth:`read`) and now, J."""
        return self.read().energy_j - mark.energy_j

    def __enter__(self) -> PowerMonitor:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(source={self.source!r}, running={self._running})"


class SampledPowerMonitor(PowerMonitor):
    """A source that reports instantaneous power (W); energy is integrated here.

    Subclasses implement :meth:`_read_power_w` and optionally :meth:`_open` / :meth:`_close`.
    A daemon thread calls :meth:`sample` every ``interval_s`` seconds; ``interval_s=0`` disables the
    thread, so samples are taken only by :meth:`sample` / :meth:`read` (deterministic tests, or a
    caller that samples on its own schedule). A failed reading (OSError, ValueError, NaN) keeps the
    previous power value and is logged once.
    """

    def __init__(self, *, interval_s: float, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        if not (interval_s >= 0.0 and math.isfinite(interval_s)):
            raise InputError(f"power sampling interval must be >= 0 s, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._last_t = 0.0
        self._last_p = math.nan
        self._energy_j = 0.0
        self._samples = 0
        self._read_errors = 0

    @abc.abstractmethod
    def _read_power_w(self) -> float:
        """Read the sensor once: instantaneous power, W. May raise OSError or ValueError."""

    def _open(self) -> None:
        """Acquire the sensor (raise BackendUnavailableError if impossible)."""

    def _close(self) -> None:
        """Release the sensor."""

    @property
    def samples_taken(self) -> int:
        """Number of samples integrated since :meth:`start` (including the first)."""
        with self._lock:
            return self._samples

    @property
    def read_errors(self) -> int:
        """Number of failed sensor readings since :meth:`start`."""
        with self._lock:
            return self._read_errors

    def start(self) -> None:
        if self._running:
            return
        self._open()
        with self._lock:
            self._energy_j = 0.0
            self._samples = 0
            self._read_errors = 0
            self._last_p = math.nan
            self._last_t = self._clock()
            self._last_p = self._read_or_hold()
            self._samples = 1
            self._running = True
        if self.interval_s > 0.0:
            self._stop_event.clear()
            self._thread = threading.Thread(target=self._run, name=f"power:{self.source}", daemon=True)
            self._thread.start()
        _LOG.info("power monitor %s started (sampling every %.4f s)", self.source, self.interval_s)

    def stop(self) -> None:
        if not self._running:
            return
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 10 * self.interval_s))
            self._thread = None
        with self._lock:
            self._running = False
        self._close()

    def sample(self) -> PowerSample:
        """Read the sensor now and integrate the energy since the previous sample.

        Energy over [t_prev, t] is 0.5 (p_prev + p) (t - t_prev), J (trapezoidal rule).
        """
        with self._lock:
            if not self._running:
                raise EipltrtError(f"power monitor {self.source} is not running; call start() first")
            now = self._clock()
            power = self._read_or_hold()
            dt = now - self._last_t
            if dt > 0.0 and math.isfinite(power) and math.isfinite(self._last_p):
                self._energy_j += 0.5 * (self._last_p + power) * dt
            if dt >= 0.0:
                self._last_t = now
            self._last_p = power
            self._samples += 1
            return PowerSample(timestamp_s=now, power_w=power, energy_j=self._energy_j)

    def read(self) -> PowerSample:
        return self.sample()

    def _read_or_hold(self) -> float:
        """One sensor reading; on failure the previous value (caller holds the lock)."""
        try:
            power = float(self._read_power_w())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            power = math.nan
            if self._read_errors == 0:
                _LOG.warning("power monitor %s: reading failed (%s); holding the last value", self.source, exc)
        if not math.isfinite(power):
            self._read_errors += 1
            return self._last_p
        return power

    def _run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            try:
                self.sample()
            except EipltrtError:  # stopped between wait() and sample()
                return


def energy_per_step_j(start: PowerSample, end: PowerSample, steps: int, idle_power_w: float = 0.0) -> float:
    """Energy per step over a window: (ΔE - idle_power_w Δt) / steps, J.

    Args:
        start: reading at the beginning of the window.
        end: reading at the end of the window (same monitor, same start()).
        steps: inference steps completed inside the window (> 0).
        idle_power_w: baseline power to subtract (e.g. from :func:`measure_idle_power_w`), W.

    Raises:
        InputError: ``steps`` <= 0 or ``end`` precedes ``start``.
    """
    if steps <= 0:
        raise InputError(f"energy per step needs at least one step in the window, got {steps}")
    duration_s = end.timestamp_s - start.timestamp_s
    if duration_s < 0.0:
        raise InputError("energy window ends before it starts; pass (start, end) in time order")
    return (end.energy_j - start.energy_j - idle_power_w * duration_s) / steps


def measure_idle_power_w(
    monitor: PowerMonitor, duration_s: float = 5.0, *, sleep: Callable[[float], None] = time.sleep
) -> float:
    """Mean power while the caller does nothing for ``duration_s`` seconds, W (the idle baseline)."""
    if not duration_s > 0.0:
        raise InputError(f"idle measurement needs a positive duration, got {duration_s!r} s")
    first = monitor.read()
    sleep(duration_s)
    last = monitor.read()
    elapsed = last.timestamp_s - first.timestamp_s
    if elapsed <= 0.0:
        raise InputError("the power monitor's clock did not advance during the idle measurement")
    return (last.energy_j - first.energy_j) / elapsed


class StepEnergyMeter:
    """Energy per inference step, measured over windows of at least ``window_steps`` steps.

    Call :meth:`step` once per inference step (from any thread). The first call only opens a
    window (it marks the end of that step); when a window holds at least ``window_steps`` further
    steps and lasts at least ``min_window_s`` seconds, it closes: the result is
    (ΔE - idle_power_w Δt) / Δsteps, J, and the next window starts where this one ended.
    """

    def __init__(
        self,
        monitor: PowerMonitor,
        window_steps: int = 100,
        *,
        idle_power_w: float = 0.0,
        min_window_s: float = 0.0,
    ) -> None:
        if window_steps < 1:
            raise InputError(f"window_steps must be >= 1, got {window_steps}")
        self.monitor = monitor
        self.window_steps = int(window_steps)
        self.idle_power_w = float(idle_power_w)
        self.min_window_s = float(min_window_s)
        self._lock = threading.Lock()
        self._mark: PowerSample | None = None
        self._steps = 0
        self.last_j_per_step: float | None = None
        self.last_mean_power_w: float | None = None

    def reset(self) -> None:
        """Forget the open window (e.g. after a pause); the next :meth:`step` starts a new one."""
        with self._lock:
            self._mark = None
            self._steps = 0

    def step(self, n: int = 1) -> float | None:
        """Count ``n`` finished steps; returns J/step when this call closes a window, else None."""
        with self._lock:
            if self._mark is None:
                self._mark = self.monitor.read()
                self._steps = 0
                return None
            self._steps += n
            if self._steps < self.window_steps:
                return None
            now = self.monitor.read()
            duration_s = now.timestamp_s - self._mark.timestamp_s
            if duration_s < self.min_window_s:
                return None
            result = energy_per_step_j(self._mark, now, self._steps, self.idle_power_w)
            if duration_s > 0.0:
                self.last_mean_power_w = (now.energy_j - self._mark.energy_j) / duration_s
            self.last_j_per_step = result
            self._mark, self._steps = now, 0
            return result
