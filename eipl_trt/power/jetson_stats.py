"""Jetson power through jetson-stats (``jtop``), when it is installed and its service runs.

``jtop`` is a client of ``jtop.service`` (socket ``/run/jtop.sock``); ``jetson.power["tot"]``
is the module input rail (``VDD_IN``/``POM_5V_IN``) or the sum of all rails, with ``power`` in mW.
The direct INA3221 reader (:mod:`eipl_trt.power.ina3221`) is preferred; this source exists for
containers where only the jtop socket is mounted.
"""

from __future__ import annotations

import logging
from typing import Any

from eipl_trt.errors import BackendUnavailableError
from eipl_trt.power.base import Clock, SampledPowerMonitor

__all__ = ["JtopMonitor"]

_LOG = logging.getLogger(__name__)


class JtopMonitor(SampledPowerMonitor):
    """Total module power from jtop (mW -> W), integrated to energy in a sampler thread.

    Args:
        interval_s: jtop update period and sampler period, s (jtop's service rate-limits updates;
            0.1-1 s is typical, far coarser than the direct INA3221 reader).
        clock: monotonic clock in s.
    """

    def __init__(self, *, interval_s: float = 0.1, clock: Clock | None = None) -> None:
        super().__init__(interval_s=interval_s, clock=clock)
        self.source = "jtop:tot"
        self._jetson: Any = None

    def _open(self) -> None:
        try:
            from jtop import JtopException, jtop
        except ImportError as exc:
            raise BackendUnavailableError("jtop not installed (pip install jetson-stats)") from exc
        client = jtop(interval=max(self.interval_s, 0.1))
        try:
            client.start()
        except JtopException as exc:
            text = " ".join(str(exc).split()) or "jtop failed"
            first_sentence = text.split(". ")[0].rstrip(".")
            raise BackendUnavailableError(f"jtop unusable: {first_sentence}") from exc
        except OSError as exc:
            raise BackendUnavailableError(f"jtop service not reachable ({exc})") from exc
        total = (client.power or {}).get("tot", {})
        if "power" not in total:
            client.close()
            raise BackendUnavailableError("jtop reports no power rails on this board")
        self._jetson = client
        self.source = f"jtop:{total.get('name', 'tot')}"

    def _close(self) -> None:
        client, self._jetson = self._jetson, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:  # noqa: BLE001 - closing must not mask the caller's error
                _LOG.debug("jtop close failed: %s", exc)

    def _read_power_w(self) -> float:
        if self._jetson is None:
            raise ValueError("jtop client is closed")
        return float(self._jetson.power["tot"]["power"]) / 1000.0
