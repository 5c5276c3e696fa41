"""ONNX Runtime runner: the CPU backend (and the reference the GPU backends are compared with)."""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping, Sequence

import numpy as np

from eipl_trt.errors import BackendUnavailableError, ModelError
from eipl_trt.runners.base import RecurrentState, Runner
from eipl_trt.spec import ModelSpec

__all__ = ["OrtRunner"]

log = logging.getLogger(__name__)


class OrtRunner(Runner):
    """Runs an exported model with ONNX Runtime; the LSTM state lives in host arrays.

    Args:
        spec: the model sidecar; the ONNX file is ``spec.variants[precision]``.
        precision: which ONNX variant to load (``fp32``, or ``fp16``/``int8`` if exported).
        num_threads: intra-op threads (default 1: on small models one thread has the lowest and
            steadiest latency, and it leaves the other cores to ROS).
        providers: ONNX Runtime execution providers (default: CPU only).
        io_binding: bind preallocated host buffers once at open (inputs copied in, outputs written
            in place, the LSTM state ping-ponging between two buffer pairs): a step allocates
            nothing. ``False`` uses ``session.run`` with a feed dict (new output arrays every step).
        allow_spinning: let idle intra-op threads spin (ONNX Runtime's default). Only matters with
            ``num_threads > 1``; ``False`` gives the cores back to ROS between steps.
        graph_rewrites: open the graph with :func:`~eipl_trt.runners.cpu_graph.rewrite_for_cpu`'s
            exact reformulations of the layers ONNX Runtime's CPU kernels run slowly (listed in
            :attr:`rewrites`). ``False`` runs the exported graph as it is.
        skip_image: also open the graph without the image decoder, stepped when the caller does not
            want the predicted image (``infer(..., want_image=False)``); the LSTM state is shared.
    """

    backend = "onnxruntime"

    def __init__(
        self,
        spec: ModelSpec,
        precision: str = "fp32",
        num_threads: int | None = None,
        providers: Sequence[str] | None = None,
        io_binding: bool = True,
        allow_spinning: bool = True,
        graph_rewrites: bool = True,
        skip_image: bool = True,
    ):
        super().__init__(spec, precision)
        self.num_threads = 1 if num_threads is None else int(num_threads)
        self.providers = list(providers) if providers is not None else ["CPUExecutionProvider"]
        self._session: Any = None
        self._state = RecurrentState.zeros(spec.rec_dim)
        self._feed: dict[str, np.ndarray] = {}
        # (roles, tensor names) fetched by session.run: all outputs, and those of the graph without the image
        self._fetch: tuple[list[str], list[str]] = ([], [])
        self._control_fetch: tuple[list[str], list[str]] = ([], [])
        self.io_binding = bool(io_binding)
        self.allow_spinning = bool(allow_spinning)
        self._bindings: list[Any] = []
        self._in_bufs: dict[str, np.ndarray] = {}
        self._out_bufs: dict[str, np.ndarray] = {}
        self._state_bufs: list[tuple[np.ndarray, np.ndarray]] = []
        self._cur = 0
        self.graph_rewrites = bool(graph_rewrites)
        self.skip_image = bool(skip_image)
        #: the layers rewritten at open (one line each), empty when none or ``graph_rewrites=False``
        self.rewrites: list[str] = []
        self._control: Any = None  # the session without the image decoder
        self._control_bindings: list[Any] = []
        self._control_out: dict[str, np.ndarray] = {}

    def _open_impl(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError(
                "ONNX Runtime is not installed; install it with `pip install onnxruntime`"
            ) from exc
        path = self.spec.verify_variant(self.precision)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if not self.allow_spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = ort.get_available_providers()
        providers = [p for p in self.providers if p in available]
        if not providers:
            raise BackendUnavailableError(
                f"none of the requested ONNX Runtime providers {self.providers} is available "
                f"(available: {available})"
            )
        if providers != self.providers:
            log.warning("ONNX Runtime providers %s unavailable; using %s", sorted(set(self.providers) - set(providers)), providers)
        full, control = self._graphs(path)
        try:
            self._session = ort.InferenceSession(full, options, providers=providers)
            if control is not None:
                self._control = ort.InferenceSession(control, options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ModelError(f"ONNX Runtime cannot load {path}: {exc}. Re-export the model.") from exc
        self._check_io()
        if self.io_binding:
            self._bind()
        log.info(
            "ONNX Runtime %s, providers %s, %d thread(s), model %s, %d layer(s) rewritten for the CPU, image decoder: %s",
            ort.__version__, self._session.get_providers(), self.num_threads, path, len(self.rewrites),
            self.image_decoder_status(),
        )

    def _graphs(self, path: Any) -> tuple[Any, Any]:
        """The graph to open (a path, or serialized bytes when rewritten) and the one without the image decoder."""
        if not (self.graph_rewrites or self.skip_image) or "image" not in self.spec.outputs:
            return str(path), None
        try:
            import onnx

            from eipl_trt.runners.cpu_graph import rewrite_for_cpu, without_outputs
        except ImportError:
            log.warning("the onnx package is not installed: ONNX Runtime runs the exported graph without the CPU "
                        "rewrites and always runs the image decoder (pip install onnx)")
            return str(path), None
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # protobuf's DecodeError and onnx's own types
            raise ModelError(f"ONNX Runtime cannot load {path}: it is not a readable ONNX file ({exc}). "
                             f"Re-export the model.") from exc
        if self.graph_rewrites:
            self.rewrites = rewrite_for_cpu(model)
        pruned = without_outputs(model, [self.spec.outputs["image"]]) if self.skip_image else None
        full = model.SerializeToString() if self.rewrites else str(path)
        return full, None if pruned is None else pruned[0].SerializeToString()

    @property
    def skips_image(self) -> bool:
        return self._control is not None

    def diagnostics(self) -> dict[str, str]:
        """Key/values for the node's ``/diagnostics``: threads, CPU graph rewrites, image decoder."""
        return {
            "threads": str(self.num_threads),
            "cpu_graph_rewrites": str(len(self.rewrites)) if self.graph_rewrites else "off",
            "image_decoder": self.image_decoder_status(),
        }

    def _check_io(self) -> None:
        """The graph must have exactly the tensors and shapes the sidecar promises."""
        graph_in = {i.name: tuple(i.shape) for i in self._session.get_inputs()}
        graph_out = {o.name: tuple(o.shape) for o in self._session.get_outputs()}
        problems = []
        for kind, want_names, want_shapes, have in (
            ("input", self.spec.inputs, self.spec.input_shapes(), graph_in),
            ("output", self.spec.outputs, self.spec.output_shapes(), graph_out),
        ):
            for role, name in want_names.items():
                if name not in have:
                    problems.append(f"{kind} {name!r} ({role}) missing")
                elif have[name] != want_shapes[role]:
                    problems.append(f"{kind} {name!r} has shape {have[name]}, sidecar implies {want_shapes[role]}")
        if problems:
            raise ModelError(
                f"{self.spec.variant_path(self.precision)} does not match model.json: {'; '.join(problems)}. "
                f"Re-export the model so the ONNX file and sidecar agree."
            )
        roles = list(self.spec.outputs)
        self._fetch = (roles, [self.spec.outputs[r] for r in roles])
        control = [r for r in roles if r != "image"]
        self._control_fetch = (control, [self.spec.outputs[r] for r in control])

    def _bind(self) -> None:
        """Two I/O bindings per session over preallocated buffers; binding ``k`` reads state pair ``k``, writes ``1 - k``.

        The session without the image decoder binds the same buffers (less the image), so either
        session can take any step.
        """
        if any(t.type != "tensor(float)" for t in [*self._session.get_inputs(), *self._session.get_outputs()]):
            log.info("%s has non-float32 I/O; stepping with session.run", self.spec.variant_path(self.precision))
            self.io_binding = False
            return
        in_shapes, out_shapes = self.spec.input_shapes(), self.spec.output_shapes()
        self._in_bufs = {r: np.zeros(in_shapes[r], np.float32) for r in ("image", "joint")}
        self._out_bufs = {r: np.zeros(s, np.float32) for r, s in out_shapes.items() if not r.startswith("state_")}
        rec = (1, self.spec.rec_dim)
        self._state_bufs = [(np.zeros(rec, np.float32), np.zeros(rec, np.float32)) for _ in range(2)]
        self._bindings = self._bindings_of(self._session, self._out_bufs)
        if self._control is not None:
            self._control_out = {r: a for r, a in self._out_bufs.items() if r != "image"}
            self._control_bindings = self._bindings_of(self._control, self._control_out)
        self._cur = 0

    def _bindings_of(self, session: Any, outputs: dict[str, np.ndarray]) -> list[Any]:
        names_in, names_out = self.spec.inputs, self.spec.outputs
        bindings = []
        for k in range(2):
            binding = session.io_binding()
            src, dst = self._state_bufs[k], self._state_bufs[1 - k]
            for name, arr in ((names_in["image"], self._in_bufs["image"]), (names_in["joint"], self._in_bufs["joint"]),
                              (names_in["state_h"], src[0]), (names_in["state_c"], src[1])):
                binding.bind_input(name, "cpu", 0, np.float32, list(arr.shape), arr.ctypes.data)
            outs = [(names_out[r], a) for r, a in outputs.items()]
            for name, arr in (*outs, (names_out["state_h"], dst[0]), (names_out["state_c"], dst[1])):
                binding.bind_output(name, "cpu", 0, np.float32, list(arr.shape), arr.ctypes.data)
            bindings.append(binding)
        return bindings

    def _close_impl(self) -> None:
        self._session = self._control = None
        self._feed = {}
        self._bindings, self._control_bindings, self._in_bufs, self._out_bufs, self._state_bufs = [], [], {}, {}, []

    def _infer_impl(self, image: np.ndarray, joint: np.ndarray) -> Mapping[str, np.ndarray]:
        if self._bindings:
            return self._run_bound(self._session, self._bindings, self._out_bufs, image, joint)
        return self._run_plain(self._session, self._fetch, image, joint)

    def _infer_control_impl(self, image: np.ndarray, joint: np.ndarray) -> Mapping[str, np.ndarray]:
        if self._control_bindings:
            return self._run_bound(self._control, self._control_bindings, self._control_out, image, joint)
        return self._run_plain(self._control, self._control_fetch, image, joint)

    def _run_bound(self, session: Any, bindings: list[Any], outputs: dict[str, np.ndarray],
                   image: np.ndarray, joint: np.ndarray) -> Mapping[str, np.ndarray]:
        np.copyto(self._in_bufs["image"], image)
        np.copyto(self._in_bufs["joint"], joint)
        started = time.perf_counter()
        session.run_with_iobinding(bindings[self._cur])
        self.last_timings = {"compute": time.perf_counter() - started}
        self._cur = 1 - self._cur
        return outputs

    def _run_plain(self, session: Any, fetch: tuple[list[str], list[str]], image: np.ndarray,
                   joint: np.ndarray) -> Mapping[str, np.ndarray]:
        names = self.spec.inputs
        feed = {
            names["image"]: image,
            names["joint"]: joint,
            names["state_h"]: self._state.h,
            names["state_c"]: self._state.c,
        }
        started = time.perf_counter()
        roles, names = fetch
        values = session.run(names, feed)
        self.last_timings = {"compute": time.perf_counter() - started}
        out = dict(zip(roles, values))
        self._state = RecurrentState(out.pop("state_h"), out.pop("state_c"))
        return out

    def _get_state_impl(self) -> RecurrentState:
        if self._bindings:
            h, c = self._state_bufs[self._cur]
            return RecurrentState(h.copy(), c.copy())
        return self._state.copy()

    def _set_state_impl(self, state: RecurrentState) -> None:
        if self._bindings:
            h, c = self._state_bufs[self._cur]
            np.copyto(h, state.h.reshape(h.shape))
            np.copyto(c, state.c.reshape(c.shape))
            return
        self._state = state.copy()
