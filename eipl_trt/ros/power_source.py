"""Optional power readings for the node, from :mod:`eipl_trt.power` (pure Python; never raises).

The node asks :func:`eipl_trt.power.probe_power_monitor` for a source once at start (parameter
``power_source``: ``auto`` tries INA3221 sysfs, jtop, NVML; ``none`` disables measuring). With a
source, diagnostics report power (W) and energy per frame (J, energy used over the last report
window divided by the steps in it) and ``~/timing`` carries ``power_w``; without one,
diagnostics say "no power source: <why>".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["PowerReading", "PowerSource", "NO_POWER_SOURCE"]

NO_POWER_SOURCE = "no power source"


@dataclass(frozen=True)
class PowerReading:
    """One reading: ``watts`` (W) and ``energy_j`` (J since the monitor started), or ``None`` with a reason.

    Attributes:
        watts: latest power, W (``None`` = no reading).
        source: the source's name (e.g. ``ina3221:VDD_IN``) or why there is no reading.
        energy_j: cumulative energy, J (``None`` = no reading).
    """

    watts: float | None
    source: str
    energy_j: float | None = None


class PowerSource:
    """A started power monitor, or the reason there is none.

    Args:
        preferred: ``auto``, ``none`` or a source name of :data:`eipl_trt.power.SOURCES`.
        monitor: an already started :class:`eipl_trt.power.PowerMonitor` to use instead of probing.
    """

    def __init__(self, preferred: str = "auto", monitor: Any = None):
        self.reason = NO_POWER_SOURCE
        self._monitor = monitor
        if monitor is None:
            try:
                from eipl_trt.power import probe_power_monitor

                self._monitor, why = probe_power_monitor(preferred)
                if self._monitor is None:
                    self.reason = why
            except ImportError:
                self.reason = f"{NO_POWER_SOURCE}: eipl_trt.power is not installed"
            except Exception as exc:  # a misconfigured or broken source must not stop the node
                self.reason = f"{NO_POWER_SOURCE}: {exc}"

    @property
    def available(self) -> bool:
        """True when readings can be taken."""
        return self._monitor is not None

    def read(self) -> PowerReading:
        """The latest reading, or a reading of ``None`` saying why."""
        if self._monitor is None:
            return PowerReading(None, self.reason)
        try:
            sample = self._monitor.read()
        except Exception as exc:
            return PowerReading(None, f"power read failed: {exc}")
        watts, energy = float(sample.power_w), float(sample.energy_j)
        source = str(getattr(self._monitor, "source", type(self._monitor).__name__))
        return PowerReading(watts if math.isfinite(watts) else None, source, energy if math.isfinite(energy) else None)

    def stop(self) -> None:
        """Release the sensor (safe to call twice)."""
        if self._monitor is not None:
            try:
                self._monitor.stop()
            except Exception:
                pass
            self._monitor = None
            self.reason = f"{NO_POWER_SOURCE}: monitor stopped"
