"""A stand-in for cuda-python's runtime module (``cuda.bindings.runtime``) over a fake GPU in host memory.

Strict and asynchronous, like the real thing:

* every function returns cuda-python's ``(err, value...)`` tuple; parameter names and the enums
  (``cudaError_t``, ``cudaMemcpyKind``, ``cudaStreamCaptureMode``) are the installed
  cuda-python's (``test_trt_names.py`` compares the signatures);
* device memory lives at addresses no host code can dereference (a runner that reads a device
  pointer from the host crashes, as on a GPU) and starts filled with 0xFF bytes (NaN as float);
* copies, kernel launches (TensorRT enqueues) and event records are queued on their stream and run
  only at ``cudaStreamSynchronize``/``cudaEventSynchronize``: reading an output before the sync
  sees stale data;
* stream capture records the queued work into a graph; a launched graph replays exactly that work
  with the addresses baked in at capture time;
* the default stream (0), pageable (non-pinned) host memory in async copies, and a copy kind that
  does not match the pointers are refused (our design uses one non-default stream and pinned buffers);
* pinned host memory starts poisoned too (0xFF bytes, NaN as float; real ``cudaMallocHost`` memory
  holds whatever was there), so a runner that reads a host buffer before writing it is caught;
* allocating or freeing memory (``cudaMalloc``, ``cudaMallocHost``, ``cudaFree``, ``cudaFreeHost``)
  while a stream captures in global or thread-local mode is refused with
  ``cudaErrorStreamCaptureUnsupported`` and invalidates the capture, as CUDA does for its
  "potentially unsafe API calls" (the capture then ends with ``cudaErrorStreamCaptureInvalidated``);
* launching a destroyed graph is refused with ``cudaErrorInvalidResourceHandle`` (real CUDA leaves
  a destroyed handle undefined; that is the code it documents for an invalid handle);
* work that runs on memory freed after it was queued or captured (a graph replayed into freed
  buffers) fails the stream with ``cudaErrorIllegalAddress``, reported by the synchronize, as a
  kernel's illegal access is on a GPU;
* a host buffer rewritten between the ``cudaMemcpyAsync`` that queued a host-to-device copy (or the
  ``cudaGraphLaunch`` that replays one) and the moment the copy runs raises
  :class:`HostBufferRace`: on a GPU the copy would have read the new bytes, the old, or a mix.
"""

from __future__ import annotations

import bisect
import enum
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

try:  # mirror the installed cuda-python's enums exactly
    from cuda.bindings import runtime as _real
except ImportError:  # pragma: no cover - cuda-python is in requirements/test.txt
    _real = None

if _real is not None:
    cudaError_t = _real.cudaError_t
    cudaMemcpyKind = _real.cudaMemcpyKind
    cudaStreamCaptureMode = _real.cudaStreamCaptureMode
    cudaStreamNonBlocking = _real.cudaStreamNonBlocking
else:  # pragma: no cover
    cudaError_t = enum.IntEnum("cudaError_t", {"cudaSuccess": 0, "cudaErrorInvalidValue": 1,
                                               "cudaErrorInsufficientDriver": 35, "cudaErrorNoDevice": 100,
                                               "cudaErrorInvalidResourceHandle": 400, "cudaErrorNotReady": 600,
                                               "cudaErrorIllegalAddress": 700,
                                               "cudaErrorNotPermitted": 800, "cudaErrorStreamCaptureUnsupported": 900,
                                               "cudaErrorStreamCaptureInvalidated": 901})
    cudaMemcpyKind = enum.IntEnum("cudaMemcpyKind", {"cudaMemcpyHostToHost": 0, "cudaMemcpyHostToDevice": 1,
                                                     "cudaMemcpyDeviceToHost": 2, "cudaMemcpyDeviceToDevice": 3,
                                                     "cudaMemcpyDefault": 4})
    cudaStreamCaptureMode = enum.IntEnum("cudaStreamCaptureMode", {"cudaStreamCaptureModeGlobal": 0,
                                                                   "cudaStreamCaptureModeThreadLocal": 1,
                                                                   "cudaStreamCaptureModeRelaxed": 2})
    cudaStreamNonBlocking = 1

OK = cudaError_t.cudaSuccess
DEVICE_BASE = 0x7E00_0000_0000  # not mapped in a normal Linux process


class FakeCudaError(RuntimeError):
    """Raised inside the fake to turn into an ``(err,)`` return."""

    def __init__(self, err: Any, why: str):
        super().__init__(why)
        self.err = err


class HostBufferRace(AssertionError):
    """A pinned host buffer changed while a host-to-device copy from it was in flight (a test failure,
    not a CUDA error: real CUDA does not notice, it copies whichever bytes are there)."""


class _Handle:
    """Base of the opaque handle types (``int(handle)`` is the address, as in cuda-python)."""

    _next = 0x5000

    def __init__(self) -> None:
        _Handle._next += 16
        self._addr = _Handle._next

    def __int__(self) -> int:
        return self._addr

    def getPtr(self) -> int:  # noqa: N802 - cuda-python's name
        return self._addr


class cudaStream_t(_Handle):  # noqa: N801 - cuda-python's name
    def __init__(self) -> None:
        super().__init__()
        self.queue: list[Callable[[], None]] = []
        self.capture: list[Callable[[], None]] | None = None
        self.capture_invalid = ""
        self.capture_mode: Any = None
        self.capture_thread = 0


class cudaEvent_t(_Handle):  # noqa: N801
    def __init__(self) -> None:
        super().__init__()
        self.time: float | None = None
        self.pending = 0


class cudaGraph_t(_Handle):  # noqa: N801
    def __init__(self, ops: list[Callable[[], None]]):
        super().__init__()
        self.ops = list(ops)
        self.destroyed = False


class cudaGraphExec_t(_Handle):  # noqa: N801
    def __init__(self, ops: list[Callable[[], None]]):
        super().__init__()
        self.ops = list(ops)
        self.destroyed = False


class Copy:
    """A queued or captured ``cudaMemcpyAsync``: addresses only, resolved when the copy runs.

    Resolving at run time is what lets a graph replay its baked-in addresses, and what catches
    memory freed after the copy was queued (``cudaErrorIllegalAddress``). :meth:`prepare` is called
    each time the copy is queued (directly, or by a graph launch): a host-to-device copy then keeps
    a snapshot of its source bytes, and running it with different bytes raises :class:`HostBufferRace`.
    """

    def __init__(self, gpu: "FakeGpu", dst: tuple[str, int], src: tuple[str, int], nbytes: int):
        self.gpu, self.dst, self.src, self.nbytes = gpu, dst, src, nbytes
        self.snapshot: bytes | None = None

    def prepare(self) -> "Copy":
        queued = Copy(self.gpu, self.dst, self.src, self.nbytes)
        if self.src[0] == "host":
            try:
                queued.snapshot = self.gpu.memory(*self.src, self.nbytes).tobytes()
            except FakeCudaError:  # freed: the copy faults when it runs
                pass
        return queued

    def __call__(self) -> None:
        dview = self.gpu.memory(*self.dst, self.nbytes)
        sview = self.gpu.memory(*self.src, self.nbytes)
        if self.snapshot is not None and sview.tobytes() != self.snapshot:
            raise HostBufferRace(
                f"pinned host buffer {self.src[1]:#x} ({self.nbytes} bytes) was rewritten after the host-to-device "
                f"copy from it was queued and before the stream ran it: synchronize (or wait for an event) before "
                f"reusing a host buffer")
        dview[:] = sview


@dataclass
class cudaDeviceProp:  # noqa: N801
    name: bytes = b"Stand-in GPU (fake)"
    major: int = 8
    minor: int = 7


@dataclass
class FakeGpu:
    """The fake device shared by the fake CUDA runtime and the fake TensorRT.

    Knobs for tests: ``driver_error`` (every call fails with that error, as without a driver),
    ``refuse_capture`` (capture ends with ``cudaErrorStreamCaptureInvalidated``), ``noop_compute``
    (TensorRT enqueues do no work: for timing the runner's own host work).
    """

    name: str = "Stand-in GPU (fake)"
    cc: tuple[int, int] = (8, 7)
    driver_error: str = ""
    refuse_capture: bool = False
    noop_compute: bool = False
    device: dict[int, np.ndarray] = field(default_factory=dict)
    host: dict[int, tuple[np.ndarray, int]] = field(default_factory=dict)
    streams: dict[int, cudaStream_t] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    _next_dev: int = DEVICE_BASE

    # ---------------------------------------------------------------- memory lookups
    def _find(self, table: dict[int, Any], ptr: int, nbytes: int) -> tuple[int, Any] | None:
        starts = sorted(table)
        i = bisect.bisect_right(starts, ptr) - 1
        if i < 0:
            return None
        start = starts[i]
        entry = table[start]
        size = entry.nbytes if isinstance(entry, np.ndarray) else entry[1]
        if ptr + nbytes <= start + size:
            return start, entry
        return None

    def device_view(self, ptr: int, nbytes: int) -> np.ndarray:
        """The bytes of device memory ``[ptr, ptr+nbytes)`` (for the fake TensorRT's kernels)."""
        hit = self._find(self.device, ptr, nbytes)
        if hit is None:
            raise FakeCudaError(cudaError_t.cudaErrorInvalidValue, f"{ptr:#x}+{nbytes} is not device memory")
        start, arr = hit
        return arr[ptr - start: ptr - start + nbytes]

    def host_view(self, ptr: int, nbytes: int) -> np.ndarray:
        hit = self._find(self.host, ptr, nbytes)
        if hit is None:
            raise FakeCudaError(cudaError_t.cudaErrorInvalidValue,
                                f"{ptr:#x}+{nbytes} is not pinned host memory (async copies need cudaMallocHost)")
        start, (arr, size) = hit
        base = arr.ctypes.data
        return arr[start - base + (ptr - start): start - base + (ptr - start) + nbytes]

    def memory(self, kind: str, ptr: int, nbytes: int) -> np.ndarray:
        """Bytes that queued work touches when it runs: freed memory is an illegal address, as on a GPU."""
        try:
            return self.device_view(ptr, nbytes) if kind == "device" else self.host_view(ptr, nbytes)
        except FakeCudaError as exc:
            raise FakeCudaError(cudaError_t.cudaErrorIllegalAddress,
                                f"queued work accessed {kind} memory that is no longer allocated: {exc}") from None

    def refuse_during_capture(self, what: str) -> None:
        """CUDA's rule for "potentially unsafe API calls" (``cudaMalloc``, ``cudaFree``, ...) during capture.

        A capture in global mode prohibits them in every thread, thread-local mode in the capturing
        thread; the call fails with ``cudaErrorStreamCaptureUnsupported`` and invalidates the capture.
        """
        me = threading.get_ident()
        for s in self.streams.values():
            if s.capture is None or s.capture_mode == cudaStreamCaptureMode.cudaStreamCaptureModeRelaxed:
                continue
            if s.capture_mode == cudaStreamCaptureMode.cudaStreamCaptureModeGlobal or s.capture_thread == me:
                s.capture_invalid = f"{what} during stream capture"
                raise FakeCudaError(cudaError_t.cudaErrorStreamCaptureUnsupported,
                                    f"{what} is not permitted while stream {int(s):#x} is capturing")

    def stream(self, handle: Any) -> cudaStream_t:
        """The stream for a ``cudaStream_t`` or int handle; the default stream is refused."""
        key = int(handle)
        if key == 0:
            raise FakeCudaError(cudaError_t.cudaErrorInvalidResourceHandle,
                                "the default stream is refused: use the runner's own stream")
        if key not in self.streams:
            raise FakeCudaError(cudaError_t.cudaErrorInvalidResourceHandle, f"unknown stream {key:#x}")
        return self.streams[key]

    def enqueue(self, stream: cudaStream_t, op: Callable[[], None]) -> None:
        """Queue ``op`` (or record it into the graph being captured); a :class:`Copy` is prepared per queueing."""
        if stream.capture is not None:
            stream.capture.append(op)
        else:
            stream.queue.append(op.prepare() if isinstance(op, Copy) else op)

    def run(self, stream: cudaStream_t, until: Callable[[], None] | None = None) -> None:
        """Run queued work in order (up to and including ``until``).

        Work that fails (an illegal address) fails the stream: the rest of its queue is dropped and
        the error is reported by the call that waited (``cudaStreamSynchronize``, ...).
        """
        while stream.queue:
            op = stream.queue.pop(0)
            try:
                op()
            except FakeCudaError:
                stream.queue.clear()
                raise
            if op is until:
                return


# the module factory lives in fake_cudart.py (kept small); re-exported here
from standins.fake_cudart import _NO_VALUE, FUNCTIONS, make_cudart  # noqa: E402,F401

