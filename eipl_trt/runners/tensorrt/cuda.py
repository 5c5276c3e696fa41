"""The CUDA facade of the TensorRT runner: pinned host memory, device memory, one stream, events, graphs.

Only this package uses it. Two implementations share the interface of :class:`Cuda`:

* :class:`CudaPython` over NVIDIA's cuda-python runtime bindings: ``cuda.bindings.runtime``
  (cuda-python >= 12.6.1), or ``from cuda import cudart`` (older cuda-python, as pinned on
  JetPack 6). Every call returns an ``(err, value...)`` tuple; an error raises :class:`CudaError`
  naming the CUDA error (e.g. ``cudaErrorInsufficientDriver``).
* :class:`~eipl_trt.runners.tensorrt.cuda_pycuda.PyCuda` where a robot image has pycuda but not
  cuda-python.

Pointers are plain ``int`` addresses; host buffers are page-locked and exposed to numpy as views.
The interface both implement (:class:`Cuda`, :class:`CudaError`, the alignment helpers) is in
:mod:`~eipl_trt.runners.tensorrt.cuda_api` and re-exported here.
"""

from __future__ import annotations

import importlib
from typing import Any

from eipl_trt.errors import BackendUnavailableError
from eipl_trt.runners.tensorrt.cuda_api import ALIGNMENT, Cuda, CudaError, align_up, host_view

__all__ = ["ALIGNMENT", "Cuda", "CudaError", "CudaPython", "align_up", "host_view", "load_cuda"]


class CudaPython(Cuda):
    """:class:`Cuda` over cuda-python's runtime module (``cuda.bindings.runtime`` or ``cuda.cudart``)."""

    name = "cuda-python"

    def __init__(self, rt: Any):
        self.rt = rt
        self._ok = rt.cudaError_t.cudaSuccess
        self._h2d = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._d2h = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._memcpy = rt.cudaMemcpyAsync
        self._record = rt.cudaEventRecord
        self._launch = rt.cudaGraphLaunch
        count = self._call(rt.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if not count:
            raise CudaError("CUDA reports no GPU (cudaGetDeviceCount = 0)", "cudaErrorNoDevice")

    def _error_name(self, err: Any) -> str:
        try:
            res = self.rt.cudaGetErrorName(err)
            name = res[1] if isinstance(res, tuple) else res
            return name.decode() if isinstance(name, bytes) else str(name)
        except Exception:  # pragma: no cover - error while reporting an error
            return str(err)

    def _call(self, result: Any, what: str) -> Any:
        err = result[0]
        if err != self._ok:
            code = self._error_name(err)
            hint = (" The NVIDIA driver is missing or older than this cuda-python needs; install the driver "
                    "(or pin a cuda-python that matches it, see the README)." if code in (
                        "cudaErrorInsufficientDriver", "cudaErrorNoDevice") else "")
            raise CudaError(f"{what} failed: {code}.{hint}", code)
        return result[1] if len(result) == 2 else result[1:] if len(result) > 2 else None

    def device(self) -> tuple[str, tuple[int, int]]:
        dev = self._call(self.rt.cudaGetDevice(), "cudaGetDevice")
        prop = self._call(self.rt.cudaGetDeviceProperties(dev), "cudaGetDeviceProperties")
        name = prop.name
        name = name.split(b"\0", 1)[0].decode(errors="replace") if isinstance(name, bytes) else str(name)
        return name.strip(), (int(prop.major), int(prop.minor))

    def malloc_host(self, nbytes: int) -> int:
        return int(self._call(self.rt.cudaMallocHost(nbytes), "cudaMallocHost"))

    def free_host(self, ptr: int) -> None:
        self._call(self.rt.cudaFreeHost(ptr), "cudaFreeHost")

    def malloc(self, nbytes: int) -> int:
        return int(self._call(self.rt.cudaMalloc(nbytes), "cudaMalloc"))

    def free(self, ptr: int) -> None:
        self._call(self.rt.cudaFree(ptr), "cudaFree")

    def stream_create(self) -> Any:
        return self._call(self.rt.cudaStreamCreateWithFlags(self.rt.cudaStreamNonBlocking), "cudaStreamCreateWithFlags")

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def stream_destroy(self, stream: Any) -> None:
        self._call(self.rt.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def stream_sync(self, stream: Any) -> None:
        err = self.rt.cudaStreamSynchronize(stream)[0]
        if err != self._ok:
            self._call((err,), "cudaStreamSynchronize")

    def h2d(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        err = self._memcpy(dst, src, nbytes, self._h2d, stream)[0]
        if err != self._ok:
            self._call((err,), "cudaMemcpyAsync (host to device)")

    def d2h(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        err = self._memcpy(dst, src, nbytes, self._d2h, stream)[0]
        if err != self._ok:
            self._call((err,), "cudaMemcpyAsync (device to host)")

    def event_create(self) -> Any:
        return self._call(self.rt.cudaEventCreate(), "cudaEventCreate")

    def event_record(self, event: Any, stream: Any) -> None:
        err = self._record(event, stream)[0]
        if err != self._ok:
            self._call((err,), "cudaEventRecord")

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self._call(self.rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

    def event_destroy(self, event: Any) -> None:
        self._call(self.rt.cudaEventDestroy(event), "cudaEventDestroy")

    def capture_begin(self, stream: Any) -> None:
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._call(self.rt.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")

    def capture_end(self, stream: Any) -> Any:
        graph = self._call(self.rt.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        try:
            try:
                exe = self._call(self.rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
            except TypeError:  # cuda-python 11.x: cudaGraphInstantiate takes a log buffer, not flags
                exe = self._call(self.rt.cudaGraphInstantiateWithFlags(graph, 0), "cudaGraphInstantiateWithFlags")
        finally:
            self.rt.cudaGraphDestroy(graph)
        return exe

    def graph_launch(self, graph: Any, stream: Any) -> None:
        err = self._launch(graph, stream)[0]
        if err != self._ok:
            self._call((err,), "cudaGraphLaunch")

    def graph_destroy(self, graph: Any) -> None:
        self._call(self.rt.cudaGraphExecDestroy(graph), "cudaGraphExecDestroy")


def _import_cudart() -> Any | None:
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def load_cuda(prefer: str = "auto") -> Cuda:
    """The CUDA facade: cuda-python if installed, else pycuda.

    Args:
        prefer: ``auto``, ``cuda-python`` or ``pycuda``.

    Raises:
        BackendUnavailableError: neither library is installed, or CUDA has no usable GPU/driver
            (the message names the CUDA error, e.g. ``cudaErrorInsufficientDriver``).
    """
    if prefer in ("auto", "cuda-python"):
        rt = _import_cudart()
        if rt is not None:
            return CudaPython(rt)
        if prefer == "cuda-python":
            raise BackendUnavailableError("cuda-python is not installed; `pip install cuda-python` (see the README "
                                          "for the version to pin on your JetPack)")
    try:
        from eipl_trt.runners.tensorrt.cuda_pycuda import PyCuda
    except ImportError as exc:
        raise BackendUnavailableError(
            "neither cuda-python nor pycuda is installed; the TensorRT runner needs one of them "
            "(`pip install cuda-python`, see the README for the version to pin on your JetPack)"
        ) from exc
    return PyCuda()
