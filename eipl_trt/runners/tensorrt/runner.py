"""``TrtRunner``: one EIPL model as a TensorRT engine, with its LSTM state kept on the GPU.

Per step: the image and joints go into pinned host buffers, are copied to the device on the
runner's own stream, ``execute_async_v3`` (or a captured CUDA graph) runs, the outputs are
copied back and the stream is synchronized once. The state never leaves the device: two state
buffer sets A/B alternate as input and output (in=A/out=B, then in=B/out=A), rebound with
``set_tensor_address`` each step, or, with CUDA graphs, by launching the graph captured for that
parity (a graph bakes in its addresses, hence one graph per parity). ``get_state``/``set_state``
copy the state only when asked (precision switch, reset).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Mapping

import numpy as np

from eipl_trt.errors import BackendUnavailableError, EipltrtError
from eipl_trt.runners.base import RecurrentState, Runner
from eipl_trt.runners.tensorrt.api import import_tensorrt, make_logger, meets
from eipl_trt.runners.tensorrt.buffers import Arena, describe_io
from eipl_trt.runners.tensorrt.builder import BuildOptions, build_plan, network_mode
from eipl_trt.runners.tensorrt.cache import CacheResult, EngineCache
from eipl_trt.runners.tensorrt.cuda import Cuda, CudaError, load_cuda
from eipl_trt.spec import ModelSpec

__all__ = ["TrtRunner", "check_variant"]

log = logging.getLogger(__name__)


def check_variant(trt: Any, spec: ModelSpec, precision: str) -> None:
    """Raise :class:`BackendUnavailableError` when this TensorRT is older than the variant's ``min_tensorrt``."""
    variant = spec.variants.get(precision)
    if variant is not None and not meets(trt.__version__, variant.min_tensorrt):
        raise BackendUnavailableError(
            f"the {precision} variant of {spec.model!r} ({variant.file}) needs TensorRT >= {variant.min_tensorrt}, "
            f"this is TensorRT {trt.__version__}; use another precision or a newer TensorRT/JetPack"
        )


class TrtRunner(Runner):
    """TensorRT runner; see the module docstring.

    Args:
        spec: the model sidecar.
        precision: the ONNX variant to build (``fp32``, ``fp16``, ``int8``).
        cuda_graphs: capture one CUDA graph per state parity (falls back to plain enqueue when
            capture is refused); ``None`` reads ``$EIPL_TRT_CUDA_GRAPHS`` (``0``/``false``/``off``
            turn them off, e.g. for the node), default on.
        cache_dir: engine cache directory (default: see :mod:`~eipl_trt.runners.tensorrt.cache`).
        build_options: builder settings.
        cuda: ``auto``, ``cuda-python``, ``pycuda``, or a :class:`Cuda` instance.
    """

    backend = "tensorrt"

    def __init__(self, spec: ModelSpec, precision: str = "fp32", *, cuda_graphs: bool | None = None,
                 cache_dir: str | None = None, build_options: BuildOptions | None = None,
                 cuda: str | Cuda = "auto"):
        super().__init__(spec, precision)
        if cuda_graphs is None:
            cuda_graphs = os.environ.get("EIPL_TRT_CUDA_GRAPHS", "1").strip().lower() not in ("0", "false", "off", "no")
        self.cuda_graphs = bool(cuda_graphs)
        self.cache = EngineCache(cache_dir)
        self.build_options = build_options or BuildOptions()
        self._cuda_choice = cuda
        self.cache_result: CacheResult | None = None
        self.graph_status = "off"
        self.trt_version = ""
        self._reset_handles()

    def _reset_handles(self) -> None:
        self._cuda: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._stream: Any = None
        self._events: list[Any] = []
        self._graphs: list[Any] = []
        self._dev: Arena | None = None
        self._host: Arena | None = None
        self._parity = 0

    # ------------------------------------------------------------------ open / close
    def _open_impl(self) -> None:
        trt = import_tensorrt()
        self.trt_version = str(trt.__version__)
        path = self.spec.verify_variant(self.precision)
        check_variant(trt, self.spec, self.precision)
        cuda = self._cuda_choice if isinstance(self._cuda_choice, Cuda) else load_cuda(self._cuda_choice)
        self._cuda = cuda
        try:
            self._open_engine(trt, cuda, path)
        except BaseException:
            self._close_impl()
            raise

    def _open_engine(self, trt: Any, cuda: Cuda, path: Any) -> None:
        gpu, cc = cuda.device()
        fields = {
            "model": self.spec.model, "precision": self.precision,
            "onnx_sha256": self.spec.variants[self.precision].sha256, "tensorrt": self.trt_version,
            "gpu": gpu, "compute_capability": f"{cc[0]}.{cc[1]}",
            "build": self.build_options.as_dict(), "network": network_mode(trt, self.precision),
        }
        runtime = trt.Runtime(make_logger(trt))
        self._runtime = runtime
        self.cache_result = self.cache.get_or_build(
            fields, lambda timing: build_plan(trt, path, self.precision, self.build_options, timing),
            runtime.deserialize_cuda_engine,
        )
        self._engine = self.cache_result.engine
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise BackendUnavailableError("TensorRT could not create an execution context (out of GPU memory?)")
        io = describe_io(trt, self._engine, self.spec, self.precision)
        self._allocate(io)
        self._stream = cuda.stream_create()
        self._handle = cuda.stream_handle(self._stream)
        self._events = [cuda.event_create() for _ in range(4)]
        self._capture_graphs()
        log.info("TensorRT %s %s engine %s (%s), CUDA graphs %s", self.trt_version, self.precision,
                 self.cache_result.path, self.cache_result.status, self.graph_status)

    def _allocate(self, io: dict[str, tuple[str, tuple[int, ...], np.dtype]]) -> None:
        cuda, ctx = self._cuda, self._context
        self._io = io
        outs = [r for r in self.spec.outputs if not r.startswith("state")]
        dev_layout = {r: io[r][1:] for r in ("image", "joint")}
        for s in "AB":
            dev_layout.update({f"{s}.h": io["state_h"][1:], f"{s}.c": io["state_c"][1:]})
        dev_layout.update({"o." + r: io["o." + r][1:] for r in outs})
        host_layout = {r: io[r][1:] for r in ("image", "joint")}
        host_layout.update({"o." + r: io["o." + r][1:] for r in outs})
        host_layout.update({"state_h": io["state_h"][1:], "state_c": io["state_c"][1:]})
        self._dev = Arena(cuda, dev_layout, host=False)
        self._host = Arena(cuda, host_layout, host=True)
        dev, host = self._dev, self._host
        for role in ("image", "joint", *("o." + r for r in outs)):
            if not ctx.set_tensor_address(io[role][0], dev[role].ptr):
                raise BackendUnavailableError(f"TensorRT refused the address of {io[role][0]}")
        self._h2d = [(dev[r].ptr, host[r].ptr, dev[r].nbytes) for r in ("image", "joint")]
        self._d2h = [(host["o." + r].ptr, dev["o." + r].ptr, dev["o." + r].nbytes) for r in outs]
        self._in_views = (host["image"].view, host["joint"].view)
        self._outputs: dict[str, np.ndarray] = {}
        self._convert: list[tuple[np.ndarray, np.ndarray]] = []
        for role in outs:
            view = host["o." + role].view
            if view.dtype == np.float32:
                self._outputs[role] = view
            else:  # fp16 (or other) engine output: convert into a float32 array per step
                out32 = np.zeros(view.shape, np.float32)
                self._outputs[role] = out32
                self._convert.append((out32, view))
        names = (io["state_h"][0], io["state_c"][0], io["o.state_h"][0], io["o.state_c"][0])
        self._state_bindings = [
            tuple(zip(names, (dev[f"{a}.h"].ptr, dev[f"{a}.c"].ptr, dev[f"{b}.h"].ptr, dev[f"{b}.c"].ptr)))
            for a, b in (("A", "B"), ("B", "A"))
        ]

    def _bind_state(self, parity: int) -> None:
        ctx = self._context
        for name, ptr in self._state_bindings[parity]:
            if not ctx.set_tensor_address(name, ptr):
                raise EipltrtError(
                    f"TensorRT refused the address {ptr:#x} of {name} for {self.name} (state buffer set "
                    f"{'AB'[parity]} in, {'BA'[parity]} out); see the TensorRT log. Not stepping: the engine would "
                    f"read and write the previous step's state buffers")

    def _enqueue(self) -> None:
        if not self._context.execute_async_v3(self._handle):
            raise EipltrtError(f"TensorRT execute_async_v3 failed for {self.name}; see the TensorRT log")

    def _capture_graphs(self) -> None:
        cuda, stream = self._cuda, self._stream
        self._graphs = []
        if not self.cuda_graphs:
            self.graph_status = "off (disabled)"
            return
        if not cuda.can_capture:
            self.graph_status = f"off ({cuda.name} cannot capture graphs)"
            return
        self._write_state(0, RecurrentState.zeros(self.spec.rec_dim))
        self._write_state(1, RecurrentState.zeros(self.spec.rec_dim))
        graphs: list[Any] = []
        try:
            for parity in (0, 1):
                self._bind_state(parity)
                self._enqueue()  # warm-up enqueue: TensorRT's lazy setup must not happen inside capture
                cuda.stream_sync(stream)
                cuda.capture_begin(stream)
                try:
                    ok = self._context.execute_async_v3(self._handle)
                finally:
                    graph = cuda.capture_end(stream)
                graphs.append(graph)
                if not ok:
                    raise EipltrtError("execute_async_v3 failed while capturing")
        except (CudaError, EipltrtError) as exc:
            for graph in graphs:
                cuda.graph_destroy(graph)
            self.graph_status = f"off (capture refused: {exc}; using plain enqueue)"
            log.warning("CUDA graph capture refused for %s: %s; stepping with plain enqueue", self.name, exc)
            return
        self._graphs = graphs
        self.graph_status = "on (one graph per state parity)"

    def _close_impl(self) -> None:
        cuda = self._cuda
        if cuda is not None:
            if self._stream is not None:
                try:
                    cuda.stream_sync(self._stream)
                except CudaError:
                    pass
            for graph in self._graphs:
                cuda.graph_destroy(graph)
            for event in self._events:
                cuda.event_destroy(event)
            if self._stream is not None:
                cuda.stream_destroy(self._stream)
            for arena in (self._dev, self._host):
                if arena is not None:
                    arena.free()
        self._context = None  # the context before the engine, as TensorRT requires
        self._engine = None
        self._runtime = None
        self._reset_handles()

    # ------------------------------------------------------------------ stepping
    def _infer_impl(self, image: np.ndarray, joint: np.ndarray) -> Mapping[str, np.ndarray]:
        cuda, stream, ev = self._cuda, self._stream, self._events
        cuda.activate()
        np.copyto(self._in_views[0], image, casting="same_kind")
        np.copyto(self._in_views[1], joint, casting="same_kind")
        parity = self._parity
        cuda.event_record(ev[0], stream)
        for dst, src, n in self._h2d:
            cuda.h2d(dst, src, n, stream)
        cuda.event_record(ev[1], stream)
        if self._graphs:
            cuda.graph_launch(self._graphs[parity], stream)
        else:
            self._bind_state(parity)
            self._enqueue()
        cuda.event_record(ev[2], stream)
        for dst, src, n in self._d2h:
            cuda.d2h(dst, src, n, stream)
        cuda.event_record(ev[3], stream)
        cuda.stream_sync(stream)
        self._parity = 1 - parity
        for out32, view in self._convert:
            np.copyto(out32, view)
        self.last_timings = {
            "h2d": cuda.event_elapsed_ms(ev[0], ev[1]) * 1e-3,
            "compute": cuda.event_elapsed_ms(ev[1], ev[2]) * 1e-3,
            "d2h": cuda.event_elapsed_ms(ev[2], ev[3]) * 1e-3,
        }
        return self._outputs

    # ------------------------------------------------------------------ state
    def _write_state(self, parity: int, state: RecurrentState) -> None:
        host, dev = self._host, self._dev
        assert host is not None and dev is not None
        s = "AB"[parity]
        np.copyto(host["state_h"].view, state.h, casting="same_kind")
        np.copyto(host["state_c"].view, state.c, casting="same_kind")
        self._cuda.h2d(dev[f"{s}.h"].ptr, host["state_h"].ptr, dev[f"{s}.h"].nbytes, self._stream)
        self._cuda.h2d(dev[f"{s}.c"].ptr, host["state_c"].ptr, dev[f"{s}.c"].nbytes, self._stream)
        self._cuda.stream_sync(self._stream)

    def _get_state_impl(self) -> RecurrentState:
        host, dev = self._host, self._dev
        assert host is not None and dev is not None
        s = "AB"[self._parity]
        self._cuda.activate()
        self._cuda.d2h(host["state_h"].ptr, dev[f"{s}.h"].ptr, dev[f"{s}.h"].nbytes, self._stream)
        self._cuda.d2h(host["state_c"].ptr, dev[f"{s}.c"].ptr, dev[f"{s}.c"].nbytes, self._stream)
        self._cuda.stream_sync(self._stream)
        return RecurrentState(host["state_h"].view.astype(np.float32), host["state_c"].view.astype(np.float32))

    def _set_state_impl(self, state: RecurrentState) -> None:
        self._cuda.activate()
        self._write_state(self._parity, state)

    # ------------------------------------------------------------------ reporting
    def diagnostics(self) -> dict[str, str]:
        """Key/values for the node's ``/diagnostics``: TensorRT version, engine cache, CUDA graphs."""
        res = self.cache_result
        if res is None:
            engine = "not built"
        elif res.status == "hit":
            engine = f"cache hit ({res.path})"
        else:
            engine = f"{res.status} in {res.build_s:.1f} s ({res.path})"
        return {"tensorrt": self.trt_version, "engine": engine, "cuda_graphs": self.graph_status,
                "cuda": getattr(self._cuda, "name", ""), "image_decoder": self.image_decoder_status()}

    @property
    def engine(self) -> Any:
        """The deserialized ``ICudaEngine`` (for ``eipl-trt inspect``)."""
        return self._engine

    @property
    def context(self) -> Any:
        """The execution context (for ``eipl-trt inspect --profile``)."""
        return self._context

    def synchronize(self) -> float:
        """Wait for the runner's stream; return the wait (s). For tools and tests."""
        started = time.perf_counter()
        self._cuda.stream_sync(self._stream)
        return time.perf_counter() - started
