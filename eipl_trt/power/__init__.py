"""Power and energy measurement: one interface in joules and watts, several optional sources.

Sources, tried in this order by ``open_power_monitor("auto")``:

1. ``ina3221``: Jetson INA3221 hwmon files in sysfs (rails found by label; the module total
   ``VDD_IN`` by default), integrated at the chip's update rate. Most direct and most precise.
2. ``jtop``: jetson-stats, if installed and ``jtop.service`` runs (total power, mW).
3. ``nvml``: NVIDIA driver, discrete GPUs: the energy counter (Volta+) or sampled power usage.

Every source is optional: on a machine with none, :func:`open_power_monitor` returns None and
:func:`probe_power_monitor` also says why (e.g. ``"no power source: no INA3221 hwmon under
/sys/bus/i2c; jtop service not usable (...); NVML unavailable: NVML library not found"``). Nothing
here imports jtop or pynvml unless that source is tried, and a missing library is a reason, not an
exception.

Typical use (energy per inference step, idle baseline subtracted)::

    monitor = open_power_monitor()            # started; None if nothing to measure
    if monitor is not None:
        idle_w = measure_idle_power_w(monitor, 5.0)
        meter = StepEnergyMeter(monitor, window_steps=300, idle_power_w=idle_w, min_window_s=5.0)
        for frame in frames:
            predictor.step(frame, joints)
            j_per_step = meter.step()         # J, once per closed window, else None
        monitor.stop()
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

from eipl_trt.errors import BackendUnavailableError, InputError
from eipl_trt.power.base import (
    Clock,
    PowerMonitor,
    PowerSample,
    SampledPowerMonitor,
    StepEnergyMeter,
    energy_per_step_j,
    measure_idle_power_w,
)
from eipl_trt.power.ina3221 import DEFAULT_SYSFS_ROOT, Ina3221Monitor, discover_ina3221_rails

__all__ = [
    "SOURCES",
    "PowerMonitor",
    "PowerSample",
    "SampledPowerMonitor",
    "StepEnergyMeter",
    "energy_per_step_j",
    "measure_idle_power_w",
    "discover_ina3221_rails",
    "open_power_monitor",
    "probe_power_monitor",
]

_LOG = logging.getLogger(__name__)

#: Source names accepted by ``preferred`` (besides "auto" and "none"), in auto order.
SOURCES = ("ina3221", "jtop", "nvml")


def _make(
    source: str,
    *,
    sysfs_root: str | os.PathLike[str],
    rails: Sequence[str] | None,
    gpu_index: int,
    interval_s: float | None,
    clock: Clock | None,
) -> PowerMonitor:
    """Build and start one source; BackendUnavailableError if it cannot be read here."""
    if source == "ina3221":
        monitor: PowerMonitor = Ina3221Monitor(rails, sysfs_root=sysfs_root, interval_s=interval_s, clock=clock)
        monitor.start()
        return monitor
    if source == "jtop":
        from eipl_trt.power.jetson_stats import JtopMonitor

        monitor = JtopMonitor(interval_s=0.1 if interval_s is None else interval_s, clock=clock)
        monitor.start()
        return monitor
    from eipl_trt.power.nvml import NvmlEnergyMonitor, NvmlPowerMonitor, NvmlQueryNotSupported

    try:
        monitor = NvmlEnergyMonitor(gpu_index, clock=clock)
        monitor.start()
        return monitor
    except NvmlQueryNotSupported as exc:
        _LOG.info("%s; falling back to sampled NVML power usage", exc)
    monitor = NvmlPowerMonitor(gpu_index, interval_s=0.05 if interval_s is None else interval_s, clock=clock)
    monitor.start()
    return monitor


def probe_power_monitor(
    preferred: str = "auto",
    *,
    sysfs_root: str | os.PathLike[str] = DEFAULT_SYSFS_ROOT,
    rails: Sequence[str] | None = None,
    gpu_index: int = 0,
    interval_s: float | None = None,
    clock: Clock | None = None,
) -> tuple[PowerMonitor | None, str]:
    """Find a working power source and start it.

    Args:
        preferred: ``"auto"`` (try ina3221, jtop, nvml in turn), one of :data:`SOURCES`, or
            ``"none"`` (measurement disabled).
        sysfs_root: sysfs mount for the INA3221 reader (``/sys`` on a robot).
        rails: INA3221 rail labels to sum; None: the module total (see :class:`Ina3221Monitor`).
        gpu_index: NVML device index.
        interval_s: sampler period, s; None: each source's default.
        clock: monotonic clock in s (tests inject their own).

    Returns:
        ``(monitor, description)``: a started monitor and its ``source``, or ``(None, reason)``
        where reason starts with ``"no power source: "`` and lists why each source failed.

    Raises:
        InputError: ``preferred`` is not a known source, or ``rails`` names a rail this board
            does not have (a configuration mistake, not a missing sensor).
    """
    if preferred == "none":
        return None, "no power source: power measurement disabled (preferred='none')"
    if preferred != "auto" and preferred not in SOURCES:
        raise InputError(
            f"unknown power source {preferred!r}; use 'auto', 'none' or one of {', '.join(SOURCES)}"
        )
    candidates = SOURCES if preferred == "auto" else (preferred,)
    reasons: list[str] = []
    for source in candidates:
        try:
            monitor = _make(
                source, sysfs_root=sysfs_root, rails=rails, gpu_index=gpu_index, interval_s=interval_s, clock=clock
            )
        except BackendUnavailableError as exc:
            reasons.append(str(exc))
            continue
        _LOG.info("power source: %s", monitor.source)
        return monitor, monitor.source
    return None, "no power source: " + "; ".join(reasons)


def open_power_monitor(
    preferred: str = "auto",
    *,
    sysfs_root: str | os.PathLike[str] = DEFAULT_SYSFS_ROOT,
    rails: Sequence[str] | None = None,
    gpu_index: int = 0,
    interval_s: float | None = None,
    clock: Clock | None = None,
) -> PowerMonitor | None:
    """Like :func:`probe_power_monitor`, returning only the started monitor (None: logged why)."""
    monitor, why = probe_power_monitor(
        preferred, sysfs_root=sysfs_root, rails=rails, gpu_index=gpu_index, interval_s=interval_s, clock=clock
    )
    if monitor is None:
        _LOG.info("%s", why)
    return monitor
