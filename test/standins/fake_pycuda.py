"""A stand-in for ``pycuda.driver`` on the fake GPU of :mod:`standins.fake_cuda` (tests only).

Names and call forms follow pycuda's wrapper (``src/wrapper/wrap_cudadrv.cpp``: ``Device.count``,
``retain_primary_context``, ``Context.push``, ``pagelocked_empty``, ``mem_alloc``,
``Stream(flags)``/``handle``, ``memcpy_htod_async(dest, src, stream)``, ``Event.record/time_since``).
Like pycuda, every call needs a CUDA context current *in the calling thread* (else ``LogicError``,
as cuMemAlloc & co. fail with an invalid context), which is what bites rclpy executor threads.
"""

from __future__ import annotations

import threading
import time
import types
from typing import Any

import numpy as np

from standins.fake_cuda import Copy, FakeCudaError, FakeGpu, cudaStream_t


def make_pycuda_driver(gpu: FakeGpu) -> types.ModuleType:
    """A module standing in for ``pycuda.driver`` on ``gpu``."""
    drv = types.ModuleType("pycuda.driver", "stand-in for pycuda.driver (tests only)")
    current: set[int] = set()

    class Error(Exception):
        pass

    class LogicError(Error):
        pass

    class LaunchError(Error):
        pass

    def run(stream: Any, until: Any = None) -> None:
        try:
            gpu.run(stream, until)
        except FakeCudaError as exc:  # e.g. work on freed memory: an illegal address, reported by the wait
            raise LaunchError(f"cuStreamSynchronize failed: an illegal memory access was encountered ({exc})") from exc

    def need_context() -> None:
        if threading.get_ident() not in current:
            raise LogicError("cuMemAlloc failed: invalid device context (no context current in this thread)")

    class Context:
        def push(self) -> None:
            current.add(threading.get_ident())

        @staticmethod
        def pop() -> None:
            current.discard(threading.get_ident())

    class Device:
        def __init__(self, number: int):
            self.number = number

        @staticmethod
        def count() -> int:
            return 1

        def name(self) -> str:
            return gpu.name

        def compute_capability(self) -> tuple[int, int]:
            return gpu.cc

        def retain_primary_context(self) -> Context:
            return Context()

    class DeviceAllocation:
        def __init__(self, ptr: int):
            self._ptr = ptr

        def __int__(self) -> int:
            return self._ptr

        def free(self) -> None:
            gpu.device.pop(self._ptr)

    class Stream:
        def __init__(self, flags: int = 0):
            need_context()
            self._s = cudaStream_t()
            gpu.streams[int(self._s)] = self._s

        @property
        def handle(self) -> int:
            return int(self._s)

        def synchronize(self) -> None:
            need_context()
            run(self._s)

    class Event:
        def __init__(self, flags: int = 0):
            need_context()
            self._time: float | None = None
            self._stream: Any = None
            self._mark: Any = None

        def record(self, stream: Any = None) -> "Event":
            def mark() -> None:
                self._time = time.perf_counter()

            self._time, self._stream, self._mark = None, stream._s, mark
            gpu.enqueue(stream._s, mark)
            return self

        def synchronize(self) -> "Event":
            if self._time is None and self._stream is not None:
                run(self._stream, until=self._mark)
            return self

        def time_since(self, event: "Event") -> float:
            if self._time is None or event._time is None:
                raise LogicError("cuEventElapsedTime failed: device not ready")
            return (self._time - event._time) * 1e3

    def init(flags: int = 0) -> None:
        pass

    def pagelocked_empty(shape: Any, dtype: Any, order: str = "C", mem_flags: int = 0) -> np.ndarray:
        need_context()
        arr = np.empty(shape, dtype)
        arr.view(np.uint8).reshape(-1)[:] = 0xFF  # poisoned, like the cuda-python stand-in's cudaMallocHost
        gpu.host[arr.ctypes.data] = (arr.view(np.uint8).reshape(-1), arr.nbytes)
        return arr

    def mem_alloc(nbytes: int) -> DeviceAllocation:
        need_context()
        ptr = gpu._next_dev
        gpu._next_dev += (int(nbytes) + 511) // 512 * 512 + 512
        gpu.device[ptr] = np.full(int(nbytes), 0xFF, np.uint8)
        return DeviceAllocation(ptr)

    def memcpy_htod_async(dest: int, src: np.ndarray, stream: Any = None) -> None:
        need_context()
        flat = np.asarray(src).reshape(-1).view(np.uint8)
        try:
            gpu.host_view(flat.ctypes.data, flat.nbytes)
            gpu.device_view(int(dest), flat.nbytes)
        except FakeCudaError as exc:
            raise LogicError(f"cuMemcpyHtoDAsync failed: {exc}") from exc
        gpu.enqueue(stream._s, Copy(gpu, ("device", int(dest)), ("host", flat.ctypes.data), flat.nbytes))

    def memcpy_dtoh_async(dest: np.ndarray, src: int, stream: Any = None) -> None:
        need_context()
        flat = np.asarray(dest).reshape(-1).view(np.uint8)
        try:
            gpu.host_view(flat.ctypes.data, flat.nbytes)
            gpu.device_view(int(src), flat.nbytes)
        except FakeCudaError as exc:
            raise LogicError(f"cuMemcpyDtoHAsync failed: {exc}") from exc
        gpu.enqueue(stream._s, Copy(gpu, ("host", flat.ctypes.data), ("device", int(src)), flat.nbytes))

    for name, value in list(locals().items()):
        if not name.startswith("_") and name not in ("drv", "gpu", "current", "run"):
            setattr(drv, name, value)
    return drv
