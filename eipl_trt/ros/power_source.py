"""Optional power readings for the node, from :mod:`eipl_trt.power` when that module exists.

The node publishes power only when ``eipl_trt.power.PowerMonitor()`` can be built and its
``available()`` is true; otherwise diagnostics say "no power source". A sample from
``PowerMonitor.read()`` may be a number (W) or an object with a ``watts`` / ``power_w`` /
``total_w`` attribute (W); an optional ``source`` / ``name`` attribute names the rail or sensor.
"""

from __future__ import annotations

import logging
import math
from typing import Any

__all__ = ["PowerSource", "NO_POWER_SOURCE"]

log = logging.getLogger(__name__)

NO_POWER_SOURCE = "no power source"


class PowerSource:
    """Wraps a ``PowerMonitor``; :meth:`read` never raises.

    Args:
        monitor: an object with ``available() -> bool`` and ``read()``; ``None`` = try to build
            ``eipl_trt.power.PowerMonitor()``.
    """

    def __init__(self, monitor: Any = None):
        self.reason = NO_POWER_SOURCE
        self._monitor = monitor if monitor is not None else self._default_monitor()
        if self._monitor is not None:
            try:
                if not self._monitor.available():
                    self.reason = f"{NO_POWER_SOURCE} ({type(self._monitor).__name__} reports none on this machine)"
                    self._monitor = None
            except Exception as exc:  # a broken monitor must not stop the node
                self.reason = f"{NO_POWER_SOURCE} (power monitor failed: {exc})"
                self._monitor = None

    def _default_monitor(self) -> Any:
        try:
            from eipl_trt.power import PowerMonitor  # type: ignore[import-not-found,attr-defined]
        except ImportError:
            self.reason = f"{NO_POWER_SOURCE} (eipl_trt.power is not installed)"
            return None
        try:
            return PowerMonitor()
        except Exception as exc:
            self.reason = f"{NO_POWER_SOURCE} (cannot start PowerMonitor: {exc})"
            return None

    @property
    def available(self) -> bool:
        """True when readings can be taken."""
        return self._monitor is not None

    def read(self) -> tuple[float | None, str]:
        """``(watts, source name)``, or ``(None, reason)`` when no reading is possible."""
        if self._monitor is None:
            return None, self.reason
        try:
            sample = self._monitor.read()
        except Exception as exc:
            return None, f"power read failed: {exc}"
        watts: Any = sample
        if not isinstance(sample, (int, float)):
            watts = next(
                (getattr(sample, a) for a in ("watts", "power_w", "total_w") if getattr(sample, a, None) is not None),
                None,
            )
        source = str(getattr(sample, "source", None) or getattr(sample, "name", None) or type(self._monitor).__name__)
        try:
            value = float(watts) if watts is not None else math.nan
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            return None, f"power reading unusable: {sample!r}"
        return value, source
