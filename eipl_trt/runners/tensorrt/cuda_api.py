"""The interface of the TensorRT runner's CUDA facade: :class:`Cuda`, :class:`CudaError` and alignment helpers.

Both implementations build on it: :class:`~eipl_trt.runners.tensorrt.cuda.CudaPython`
(cuda-python) and :class:`~eipl_trt.runners.tensorrt.cuda_pycuda.PyCuda` (pycuda);
:func:`~eipl_trt.runners.tensorrt.cuda.load_cuda` picks one. Every name here is re-exported by
:mod:`~eipl_trt.runners.tensorrt.cuda`.
"""

from __future__ import annotations

import abc
import ctypes
from typing import Any

import numpy as np

from eipl_trt.errors import BackendUnavailableError

__all__ = ["ALIGNMENT", "Cuda", "CudaError", "align_up", "host_view"]

#: Byte alignment of every tensor address handed to TensorRT (``setTensorAddress`` requires 256).
ALIGNMENT = 256


def align_up(n: int, alignment: int = ALIGNMENT) -> int:
    """``n`` rounded up to a multiple of ``alignment`` (bytes)."""
    return (n + alignment - 1) // alignment * alignment


class CudaError(BackendUnavailableError):
    """A CUDA runtime call failed; ``code`` is the CUDA error name (``cudaErrorInsufficientDriver``, ...)."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code


def host_view(ptr: int, nbytes: int) -> np.ndarray:
    """A writable uint8 numpy view of ``nbytes`` of host memory at ``ptr`` (no copy)."""
    return np.frombuffer((ctypes.c_uint8 * nbytes).from_address(ptr), np.uint8)


class Cuda(abc.ABC):
    """What the runner needs from CUDA. Handles (streams, events, graphs) are opaque objects."""

    #: ``cuda-python`` / ``pycuda``, for logs and diagnostics.
    name: str = ""

    @abc.abstractmethod
    def device(self) -> tuple[str, tuple[int, int]]:
        """``(GPU name, (major, minor) compute capability)`` of the current device."""

    def activate(self) -> None:
        """Make the CUDA context current in the calling thread (a no-op where the runtime does it)."""

    @abc.abstractmethod
    def malloc_host(self, nbytes: int) -> int:
        """Allocate page-locked host memory; return its address."""

    @abc.abstractmethod
    def free_host(self, ptr: int) -> None:
        """Free :meth:`malloc_host` memory."""

    @abc.abstractmethod
    def malloc(self, nbytes: int) -> int:
        """Allocate device memory (at least 256-byte aligned); return its address."""

    @abc.abstractmethod
    def free(self, ptr: int) -> None:
        """Free :meth:`malloc` memory."""

    @abc.abstractmethod
    def stream_create(self) -> Any:
        """A new non-blocking stream (never the default stream)."""

    @abc.abstractmethod
    def stream_handle(self, stream: Any) -> int:
        """The stream's ``cudaStream_t`` as an int (what ``execute_async_v3`` takes)."""

    @abc.abstractmethod
    def stream_destroy(self, stream: Any) -> None:
        """Destroy a stream."""

    @abc.abstractmethod
    def stream_sync(self, stream: Any) -> None:
        """Block until everything queued on ``stream`` has run."""

    @abc.abstractmethod
    def h2d(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        """Queue a host-to-device copy on ``stream``."""

    @abc.abstractmethod
    def d2h(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        """Queue a device-to-host copy on ``stream``."""

    @abc.abstractmethod
    def event_create(self) -> Any:
        """A timing event."""

    @abc.abstractmethod
    def event_record(self, event: Any, stream: Any) -> None:
        """Queue ``event`` on ``stream``."""

    @abc.abstractmethod
    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds between two completed events."""

    @abc.abstractmethod
    def event_destroy(self, event: Any) -> None:
        """Destroy an event."""

    @property
    def can_capture(self) -> bool:
        """Whether this implementation can capture and launch CUDA graphs."""
        return True

    @abc.abstractmethod
    def capture_begin(self, stream: Any) -> None:
        """Start capturing the work queued on ``stream`` (thread-local mode)."""

    @abc.abstractmethod
    def capture_end(self, stream: Any) -> Any:
        """Stop capturing and return an instantiated, launchable graph."""

    @abc.abstractmethod
    def graph_launch(self, graph: Any, stream: Any) -> None:
        """Queue a captured graph on ``stream``."""

    @abc.abstractmethod
    def graph_destroy(self, graph: Any) -> None:
        """Free a graph returned by :meth:`capture_end`."""
