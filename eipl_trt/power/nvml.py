"""Discrete-GPU power and energy through NVML (``pynvml`` from the nvidia-ml-py package).

Preferred: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded, Volta and newer):
energy over a window is a plain counter difference, no sampling error. The counter updates about
every 100 ms, so use windows of several seconds. Fallback: ``nvmlDeviceGetPowerUsage`` (mW; a 1 s
average on Ampere and newer except GA100) integrated by a sampler thread. On Jetson, NVML
initialises but both queries are NOT_SUPPORTED; use the INA3221 reader there.
"""

from __future__ import annotations

import logging
import math
from types import ModuleType
from typing import Any

from eipl_trt.errors import BackendUnavailableError, EipltrtError
from eipl_trt.power.base import Clock, PowerMonitor, PowerSample, SampledPowerMonitor

__all__ = ["NvmlEnergyMonitor", "NvmlPowerMonitor", "NvmlQueryNotSupported", "import_pynvml"]

_LOG = logging.getLogger(__name__)


def import_pynvml() -> ModuleType:
    """The ``pynvml`` module. Raises BackendUnavailableError if nvidia-ml-py is not installed."""
    try:
        import pynvml
    except ImportError as exc:
        raise BackendUnavailableError("NVML Python bindings not installed (pip install nvidia-ml-py)") from exc
    return pynvml


class NvmlQueryNotSupported(BackendUnavailableError):
    """NVML works but this GPU does not support the query (energy counter before Volta, Jetson)."""


def _describe(pynvml: ModuleType, exc: Exception) -> str:
    if isinstance(exc, getattr(pynvml, "NVMLError_LibraryNotFound", ())):
        return "NVML library not found (no NVIDIA driver)"
    if isinstance(exc, getattr(pynvml, "NVMLError_NotSupported", ())):
        return "not supported on this GPU"
    return str(exc) or type(exc).__name__


class _NvmlDevice:
    """nvmlInit + device handle, shared by both monitors."""

    def __init__(self, gpu_index: int) -> None:
        self.gpu_index = int(gpu_index)
        self.pynvml: Any = None
        self.handle: Any = None

    def open(self) -> None:
        pynvml = import_pynvml()
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise BackendUnavailableError(f"NVML unavailable: {_describe(pynvml, exc)}") from exc
        try:
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(self.gpu_index)
        except pynvml.NVMLError as exc:
            pynvml.nvmlShutdown()
            raise BackendUnavailableError(f"NVML has no GPU {self.gpu_index}: {_describe(pynvml, exc)}") from exc
        self.pynvml = pynvml

    def close(self) -> None:
        pynvml, self.pynvml, self.handle = self.pynvml, None, None
        if pynvml is not None:
            try:
                pynvml.nvmlShutdown()
            except pynvml.NVMLError as exc:
                _LOG.debug("nvmlShutdown failed: %s", exc)

    def energy_mj(self) -> int:
        return int(self.pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def power_w(self) -> float:
        return float(self.pynvml.nvmlDeviceGetPowerUsage(self.handle)) / 1000.0

    def check(self, query: str) -> None:
        """Run ``query`` ('energy' or 'power') once; BackendUnavailableError (and close) if it fails."""
        try:
            self.energy_mj() if query == "energy" else self.power_w()
        except self.pynvml.NVMLError as exc:
            pynvml, reason = self.pynvml, _describe(self.pynvml, exc)
            self.close()
            if isinstance(exc, getattr(pynvml, "NVMLError_NotSupported", ())):
                raise NvmlQueryNotSupported(f"NVML {query} query {reason}") from exc
            raise BackendUnavailableError(f"NVML {query} query failed: {reason}") from exc


class NvmlEnergyMonitor(PowerMonitor):
    """GPU energy from NVML's hardware counter (mJ -> J); power from nvmlDeviceGetPowerUsage.

    Args:
        gpu_index: NVML device index.
        clock: monotonic clock in s.
    """

    def __init__(self, gpu_index: int = 0, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._device = _NvmlDevice(gpu_index)
        self._start_mj = 0
        self._last_energy_j = 0.0
        self.source = f"nvml:gpu{gpu_index}:energy"

    def start(self) -> None:
        if self._running:
            return
        self._device.open()
        self._device.check("energy")
        with self._lock:
            self._start_mj = self._device.energy_mj()
            self._last_energy_j = 0.0
            self._running = True

    def stop(self) -> None:
        with self._lock:
            if not self._running:
                return
            self._running = False
            self._device.close()

    def read(self) -> PowerSample:
        with self._lock:
            if not self._running:
                raise EipltrtError(f"power monitor {self.source} is not running; call start() first")
            now = self._clock()
            nvml_error = self._device.pynvml.NVMLError
            try:
                self._last_energy_j = (self._device.energy_mj() - self._start_mj) / 1000.0
            except nvml_error as exc:  # transient (GPU lost, driver busy): keep the last count
                _LOG.warning("NVML energy read failed (%s); holding the last value", exc)
            try:
                power_w = self._device.power_w()
            except nvml_error:
                power_w = math.nan
            return PowerSample(timestamp_s=now, power_w=power_w, energy_j=self._last_energy_j)


class NvmlPowerMonitor(SampledPowerMonitor):
    """GPU power from nvmlDeviceGetPowerUsage (mW -> W), integrated by a sampler thread.

    Args:
        gpu_index: NVML device index.
        interval_s: sampler period, s (the reading itself is refreshed every 0.1-1 s).
        clock: monotonic clock in s.
    """

    def __init__(self, gpu_index: int = 0, *, interval_s: float = 0.05, clock: Clock | None = None) -> None:
        super().__init__(interval_s=interval_s, clock=clock)
        self._device = _NvmlDevice(gpu_index)
        self.source = f"nvml:gpu{gpu_index}:power"

    def _open(self) -> None:
        self._device.open()
        self._device.check("power")

    def _close(self) -> None:
        self._device.close()

    def _read_power_w(self) -> float:
        try:
            return self._device.power_w()
        except Exception as exc:  # pynvml.NVMLError; its class is only known once imported
            raise ValueError(str(exc)) from exc
