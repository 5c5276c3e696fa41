"""The :class:`~eipl_trt.runners.tensorrt.cuda_api.Cuda` facade over pycuda (for images without cuda-python).

pycuda binds a CUDA context to a thread. rclpy runs callbacks on executor threads, so every call
first makes the device's primary context current in the calling thread (once per thread; the
primary context is the one the CUDA runtime and TensorRT use, so buffers are shared with them).
pycuda has no CUDA-graph API (checked in its wrapper, ``src/wrapper/wrap_cudadrv.cpp``), so with
pycuda the runner enqueues without graphs (``can_capture`` is False).
"""

from __future__ import annotations

import threading
from typing import Any

import pycuda.driver as drv  # ImportError here tells load_cuda that pycuda is missing

from eipl_trt.runners.tensorrt.cuda_api import Cuda, CudaError

__all__ = ["PyCuda"]


class PyCuda(Cuda):
    """pycuda implementation; see the module docstring for its threading rule."""

    name = "pycuda"

    def __init__(self, device: int = 0):
        try:
            drv.init()
            if drv.Device.count() == 0:
                raise CudaError("CUDA reports no GPU (pycuda Device.count() = 0)", "cudaErrorNoDevice")
            self._dev = drv.Device(device)
            self._ctx = self._dev.retain_primary_context()
        except drv.Error as exc:
            raise CudaError(f"pycuda cannot initialise CUDA: {exc}. Is the NVIDIA driver installed?",
                            type(exc).__name__) from exc
        self._threads: set[int] = set()
        self._lock = threading.Lock()
        self._host: dict[int, Any] = {}
        self._dmem: dict[int, Any] = {}
        self.activate()

    def activate(self) -> None:
        ident = threading.get_ident()
        if ident in self._threads:
            return
        with self._lock:
            self._ctx.push()
            self._threads.add(ident)

    def device(self) -> tuple[str, tuple[int, int]]:
        self.activate()
        return self._dev.name(), tuple(self._dev.compute_capability())  # type: ignore[return-value]

    def malloc_host(self, nbytes: int) -> int:
        self.activate()
        arr = drv.pagelocked_empty(nbytes, dtype="uint8")
        ptr = int(arr.ctypes.data)
        self._host[ptr] = arr
        return ptr

    def free_host(self, ptr: int) -> None:
        arr = self._host.pop(ptr)
        base = getattr(arr, "base", None)
        if base is not None and hasattr(base, "free"):
            base.free()

    def malloc(self, nbytes: int) -> int:
        self.activate()
        mem = drv.mem_alloc(nbytes)
        self._dmem[int(mem)] = mem
        return int(mem)

    def free(self, ptr: int) -> None:
        self._dmem.pop(ptr).free()

    def stream_create(self) -> Any:
        self.activate()
        return drv.Stream(flags=1)  # CU_STREAM_NON_BLOCKING

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def stream_destroy(self, stream: Any) -> None:
        """pycuda destroys streams when they are garbage collected."""

    def stream_sync(self, stream: Any) -> None:
        self.activate()
        stream.synchronize()

    def _host_array(self, ptr: int, nbytes: int) -> Any:
        for base, arr in self._host.items():
            if base <= ptr and ptr + nbytes <= base + arr.nbytes:
                return arr[ptr - base: ptr - base + nbytes]
        raise CudaError(f"host address {ptr:#x} is not a pinned buffer of this facade", "cudaErrorInvalidValue")

    def h2d(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        self.activate()
        drv.memcpy_htod_async(dst, self._host_array(src, nbytes), stream)

    def d2h(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        self.activate()
        drv.memcpy_dtoh_async(self._host_array(dst, nbytes), src, stream)

    def event_create(self) -> Any:
        self.activate()
        return drv.Event()

    def event_record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        end.synchronize()
        return float(end.time_since(start))

    def event_destroy(self, event: Any) -> None:
        """pycuda destroys events when they are garbage collected."""

    @property
    def can_capture(self) -> bool:
        return False

    def capture_begin(self, stream: Any) -> None:
        raise CudaError("pycuda cannot capture CUDA graphs", "cudaErrorNotSupported")

    def capture_end(self, stream: Any) -> Any:
        raise CudaError("pycuda cannot capture CUDA graphs", "cudaErrorNotSupported")

    def graph_launch(self, graph: Any, stream: Any) -> None:
        raise CudaError("pycuda cannot launch CUDA graphs", "cudaErrorNotSupported")

    def graph_destroy(self, graph: Any) -> None:
        """Nothing to free: pycuda never makes graphs."""
