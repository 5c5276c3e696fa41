"""The stand-in ``cuda.bindings.runtime`` module: cuda-python's runtime functions over a :class:`FakeGpu`.

See :mod:`standins.fake_cuda` for the semantics (asynchronous streams, graphs, refusals).
"""

from __future__ import annotations

import threading
import time
import types
from typing import Any, Callable

import numpy as np

from standins.fake_cuda import (OK, Copy, FakeCudaError, FakeGpu, cudaDeviceProp, cudaError_t, cudaEvent_t,
                                cudaGraph_t, cudaGraphExec_t, cudaMemcpyKind, cudaStream_t, cudaStreamCaptureMode,
                                cudaStreamNonBlocking)

__all__ = ["FUNCTIONS", "make_cudart"]

FUNCTIONS = (
    "cudaGetDeviceCount", "cudaGetDevice", "cudaGetDeviceProperties", "cudaGetErrorName", "cudaMallocHost",
    "cudaFreeHost", "cudaMalloc", "cudaFree", "cudaStreamCreateWithFlags", "cudaStreamDestroy",
    "cudaStreamSynchronize", "cudaMemcpyAsync", "cudaEventCreate", "cudaEventRecord", "cudaEventSynchronize",
    "cudaEventElapsedTime", "cudaEventDestroy", "cudaStreamBeginCapture", "cudaStreamEndCapture",
    "cudaGraphInstantiate", "cudaGraphInstantiateWithFlags", "cudaGraphLaunch", "cudaGraphDestroy", "cudaGraphExecDestroy",
)


def make_cudart(gpu: FakeGpu) -> types.ModuleType:
    """A module that stands in for ``cuda.bindings.runtime`` on ``gpu``."""
    mod = types.ModuleType("cuda.bindings.runtime", "stand-in for cuda-python's runtime (tests only)")
    mod.cudaError_t, mod.cudaMemcpyKind = cudaError_t, cudaMemcpyKind
    mod.cudaStreamCaptureMode, mod.cudaStreamNonBlocking = cudaStreamCaptureMode, cudaStreamNonBlocking
    mod.cudaStream_t, mod.cudaEvent_t, mod.cudaGraph_t, mod.cudaGraphExec_t = (
        cudaStream_t, cudaEvent_t, cudaGraph_t, cudaGraphExec_t)
    mod.FAKE_GPU = gpu

    def api(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
            gpu.calls[fn.__name__] = gpu.calls.get(fn.__name__, 0) + 1
            if gpu.driver_error and fn.__name__ != "cudaGetErrorName":
                err = getattr(cudaError_t, gpu.driver_error)
                return (err,) if fn.__name__ in _NO_VALUE else (err, None)
            try:
                out = fn(*args, **kwargs)
            except FakeCudaError as exc:
                return (exc.err, None) if fn.__name__ not in _NO_VALUE else (exc.err,)
            return (OK,) if fn.__name__ in _NO_VALUE else (OK, out)

        wrapper.__name__ = fn.__name__
        wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
        setattr(mod, fn.__name__, wrapper)
        return wrapper

    @api
    def cudaGetDeviceCount():  # noqa: N802
        return 1

    @api
    def cudaGetDevice():  # noqa: N802
        return 0

    @api
    def cudaGetDeviceProperties(device):  # noqa: N802
        if device != 0:
            raise FakeCudaError(cudaError_t.cudaErrorInvalidValue, "only device 0")
        return cudaDeviceProp(gpu.name.encode(), *gpu.cc)

    @api
    def cudaGetErrorName(error):  # noqa: N802
        return cudaError_t(error).name.encode()

    @api
    def cudaMallocHost(size):  # noqa: N802
        gpu.refuse_during_capture("cudaMallocHost")
        raw = np.full(int(size) + 4096, 0xFF, np.uint8)  # poisoned, like device memory: NaN as float
        addr = (raw.ctypes.data + 4095) // 4096 * 4096
        gpu.host[addr] = (raw, int(size))
        return addr

    @api
    def cudaFreeHost(ptr):  # noqa: N802
        gpu.refuse_during_capture("cudaFreeHost")
        if gpu.host.pop(int(ptr), None) is None:
            raise FakeCudaError(cudaError_t.cudaErrorInvalidValue, "not a cudaMallocHost pointer")

    @api
    def cudaMalloc(size):  # noqa: N802
        gpu.refuse_during_capture("cudaMalloc")
        addr = gpu._next_dev
        gpu._next_dev += (int(size) + 511) // 512 * 512 + 512
        gpu.device[addr] = np.full(int(size), 0xFF, np.uint8)  # uninitialised memory: NaN as float
        return addr

    @api
    def cudaFree(devPtr):  # noqa: N802, N803
        gpu.refuse_during_capture("cudaFree")
        if gpu.device.pop(int(devPtr), None) is None:
            raise FakeCudaError(cudaError_t.cudaErrorInvalidValue, "not a cudaMalloc pointer")

    @api
    def cudaStreamCreateWithFlags(flags):  # noqa: N802
        stream = cudaStream_t()
        gpu.streams[int(stream)] = stream
        return stream

    @api
    def cudaStreamDestroy(stream):  # noqa: N802
        s = gpu.stream(stream)
        gpu.run(s)
        del gpu.streams[int(s)]

    @api
    def cudaStreamSynchronize(stream):  # noqa: N802
        s = gpu.stream(stream)
        if s.capture is not None:
            s.capture_invalid = "cudaStreamSynchronize during capture"
            raise FakeCudaError(cudaError_t.cudaErrorStreamCaptureUnsupported, "sync while capturing")
        gpu.run(s)

    @api
    def cudaMemcpyAsync(dst, src, count, kind, stream):  # noqa: N802
        s, n = gpu.stream(stream), int(count)
        kinds = {cudaMemcpyKind.cudaMemcpyHostToDevice: ("device", "host"),
                 cudaMemcpyKind.cudaMemcpyDeviceToHost: ("host", "device"),
                 cudaMemcpyKind.cudaMemcpyDeviceToDevice: ("device", "device")}
        if kind not in kinds:
            raise FakeCudaError(cudaError_t.cudaErrorInvalidValue, f"copy kind {kind!r} not supported by the stand-in")
        dkind, skind = kinds[kind]
        for k, ptr in ((dkind, int(dst)), (skind, int(src))):  # checked now, as CUDA checks the pointers
            gpu.device_view(ptr, n) if k == "device" else gpu.host_view(ptr, n)
        gpu.enqueue(s, Copy(gpu, (dkind, int(dst)), (skind, int(src)), n))

    @api
    def cudaEventCreate():  # noqa: N802
        return cudaEvent_t()

    @api
    def cudaEventRecord(event, stream):  # noqa: N802
        s = gpu.stream(stream)
        if not isinstance(event, cudaEvent_t):
            raise FakeCudaError(cudaError_t.cudaErrorInvalidResourceHandle, "not an event")
        event.time, event.pending = None, event.pending + 1

        def mark() -> None:
            event.pending -= 1
            event.time = time.perf_counter()

        event._mark, event._stream = mark, s  # type: ignore[attr-defined]
        gpu.enqueue(s, mark)

    @api
    def cudaEventSynchronize(event):  # noqa: N802
        if event.pending:
            gpu.run(event._stream, until=event._mark)

    @api
    def cudaEventElapsedTime(start, end):  # noqa: N802
        if start.pending or end.pending or start.time is None or end.time is None:
            raise FakeCudaError(cudaError_t.cudaErrorNotReady, "event not complete")
        return (end.time - start.time) * 1e3

    @api
    def cudaEventDestroy(event):  # noqa: N802
        pass

    @api
    def cudaStreamBeginCapture(stream, mode):  # noqa: N802
        s = gpu.stream(stream)
        if s.capture is not None or s.queue:
            raise FakeCudaError(cudaError_t.cudaErrorStreamCaptureUnsupported, "stream busy or already capturing")
        s.capture, s.capture_invalid = [], ""
        s.capture_mode, s.capture_thread = mode, threading.get_ident()

    @api
    def cudaStreamEndCapture(stream):  # noqa: N802
        s = gpu.stream(stream)
        if s.capture is None:
            raise FakeCudaError(cudaError_t.cudaErrorIllegalState if hasattr(cudaError_t, "cudaErrorIllegalState")
                                else cudaError_t.cudaErrorInvalidValue, "not capturing")
        ops, s.capture = s.capture, None
        if gpu.refuse_capture or s.capture_invalid:
            raise FakeCudaError(cudaError_t.cudaErrorStreamCaptureInvalidated, s.capture_invalid or "refused")
        return cudaGraph_t(ops)

    def live(handle: Any, kind: type, what: str) -> Any:
        if not isinstance(handle, kind) or handle.destroyed:
            why = "was destroyed" if isinstance(handle, kind) else f"is not a {kind.__name__}"
            raise FakeCudaError(cudaError_t.cudaErrorInvalidResourceHandle, f"{what} {why}")
        return handle

    @api
    def cudaGraphInstantiate(graph, flags):  # noqa: N802
        return cudaGraphExec_t(live(graph, cudaGraph_t, "graph").ops)

    @api
    def cudaGraphInstantiateWithFlags(graph, flags):  # noqa: N802
        return cudaGraphExec_t(live(graph, cudaGraph_t, "graph").ops)

    @api
    def cudaGraphLaunch(graphExec, stream):  # noqa: N802, N803
        s = gpu.stream(stream)
        for op in live(graphExec, cudaGraphExec_t, "graph exec").ops:
            gpu.enqueue(s, op)

    @api
    def cudaGraphDestroy(graph):  # noqa: N802
        live(graph, cudaGraph_t, "graph").destroyed = True

    @api
    def cudaGraphExecDestroy(graphExec):  # noqa: N802, N803
        live(graphExec, cudaGraphExec_t, "graph exec").destroyed = True

    return mod


#: Functions whose cuda-python binding returns only ``(err,)``.
_NO_VALUE = {"cudaFreeHost", "cudaFree", "cudaStreamDestroy", "cudaStreamSynchronize", "cudaMemcpyAsync",
             "cudaEventRecord", "cudaEventSynchronize", "cudaEventDestroy", "cudaStreamBeginCapture",
             "cudaGraphLaunch", "cudaGraphDestroy", "cudaGraphExecDestroy"}
