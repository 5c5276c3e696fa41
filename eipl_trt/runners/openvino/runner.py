"""OpenVINO runner: a second CPU backend (x86 and ARM), behind the same :class:`Runner` interface.

The exported ONNX file is compiled by OpenVINO's CPU plugin for one latency-bound request. Every
tensor of a step lives in numpy arrays allocated once at :meth:`OvRunner.open` and shared with
OpenVINO (``ov.Tensor(array, shared_memory=True)``): the inputs are copied into them, the outputs
are written straight into them, and the LSTM state ping-pongs between two buffer pairs (the
state outputs of step ``n`` are the state inputs of step ``n + 1``), so a step allocates nothing.

As with ONNX Runtime, a second compiled model without the predicted-image output (OpenVINO drops
the nodes only that output needed: for SARNN its image encoder, heatmaps and decoder) serves the
steps whose caller does not want the image (``infer(..., want_image=False)``). Both bind the same
buffers, so the LSTM state carries from one to the other at any step.

Precisions:

Precisions (each runs the arithmetic its name says; :meth:`OvRunner.open` reads the compiled model's
``INFERENCE_PRECISION_HINT`` back and refuses a mismatch, since the CPU plugin's own default is bf16 on
BF16 hardware):

- ``fp32``: ``model.onnx`` with ``INFERENCE_PRECISION_HINT=f32`` (the ONNX graph's arithmetic up to
  kernel rounding; parity with ONNX Runtime is tested over 50 fed-back steps).
- ``int8``: the symmetric Q/DQ variant that ``eipl-trt quantize`` writes (``model.int8.onnx``); the
  CPU plugin folds the Q/DQ pairs into real int8 kernels where the CPU reports ``INT8``; the layers
  left in float run f32.
- ``bf16``: ``model.onnx`` with the ``bf16`` hint, on x86 CPUs that report ``BF16`` (AMX or
  AVX512-BF16). Its error rate is the model's own (``eipl-trt evaluate --precision bf16``), not
  fp16's.
- ``fp16``: ``model.onnx`` with the ``f16`` hint, on CPUs that report ``FP16`` arithmetic (ARMv8.2+).
  On other CPUs ``fp16`` is ONNX Runtime's fp16 variant; OpenVINO refuses it rather than run
  another arithmetic under that name.

Needs the optional extra ``openvino`` (``pip install eipl_trt[openvino]``).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping

import numpy as np

from eipl_trt.errors import BackendUnavailableError, ModelError
from eipl_trt.runners.base import RecurrentState, Runner
from eipl_trt.spec import ModelSpec

__all__ = ["OvRunner", "INFERENCE_PRECISION"]

#: OpenVINO ``INFERENCE_PRECISION_HINT`` per precision: each runs the arithmetic its name says.
INFERENCE_PRECISION = {"fp32": "f32", "fp16": "f16", "bf16": "bf16", "int8": "f32"}

log = logging.getLogger(__name__)


class OvRunner(Runner):
    """Runs an exported model with OpenVINO's CPU plugin; state and I/O in preallocated host buffers.

    Args:
        spec: the model sidecar.
        precision: ``fp32``, ``int8`` (the Q/DQ variant) or ``fp16`` (bf16/f16 inference hint).
        num_threads: ``INFERENCE_NUM_THREADS`` (default 1, as for ONNX Runtime).
        skip_image: also compile the model without the image output, stepped when the caller does
            not want the predicted image; the LSTM state is shared.
    """

    backend = "openvino"

    def __init__(self, spec: ModelSpec, precision: str = "fp32", num_threads: int | None = None,
                 skip_image: bool = True):
        super().__init__(spec, precision)
        self.num_threads = 1 if num_threads is None else int(num_threads)
        self.skip_image = bool(skip_image)
        #: the OpenVINO ``INFERENCE_PRECISION_HINT`` in use (``f32``, ``bf16``, ``f16``).
        self.inference_precision = "f32"
        self._request: Any = None
        self._in: dict[str, np.ndarray] = {}
        self._out: dict[str, np.ndarray] = {}
        self._control_request: Any = None  # the model without the image output
        self._control_out: dict[str, np.ndarray] = {}
        self._state_bufs: list[tuple[np.ndarray, np.ndarray]] = []
        self._state_tensors: list[tuple[Any, Any]] = []
        self._cur = 0

    def _open_impl(self) -> None:
        from eipl_trt.runners.openvino import capabilities as backend

        why = backend.unavailable_reason()
        if why:
            raise BackendUnavailableError(f"OpenVINO backend unavailable: {why}. Use backend 'onnxruntime'.")
        import openvino as ov

        refused = backend.refused_precisions(self.spec).get(self.precision)
        if refused:
            raise BackendUnavailableError(f"OpenVINO cannot run {self.precision} here: {refused}")
        variant = "int8" if self.precision == "int8" else "fp32"
        path = self.spec.verify_variant(variant)
        self.inference_precision = INFERENCE_PRECISION[self.precision]
        config = {
            "INFERENCE_NUM_THREADS": self.num_threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": self.inference_precision,
        }
        core = ov.Core()
        try:
            model = core.read_model(str(path))
            compiled = core.compile_model(model, "CPU", config)
            control = self._without_image(ov, model)
            control_compiled = None if control is None else core.compile_model(control, "CPU", config)
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses
            raise ModelError(f"OpenVINO cannot compile {path}: {exc}. Re-export the model.") from exc
        self._check_io(compiled, path)
        self._request = compiled.create_infer_request()
        in_shapes, out_shapes = self.spec.input_shapes(), self.spec.output_shapes()
        self._in = {r: np.zeros(in_shapes[r], np.float32) for r in ("image", "joint")}
        self._out = {r: np.zeros(s, np.float32) for r, s in out_shapes.items() if not r.startswith("state_")}
        rec = (1, self.spec.rec_dim)
        self._state_bufs = [(np.zeros(rec, np.float32), np.zeros(rec, np.float32)) for _ in range(2)]
        self._state_tensors = [(ov.Tensor(h, shared_memory=True), ov.Tensor(c, shared_memory=True))
                               for h, c in self._state_bufs]
        self._bind(ov, self._request, self._out)
        if control_compiled is not None:
            self._control_out = {r: a for r, a in self._out.items() if r != "image"}
            self._control_request = control_compiled.create_infer_request()
            self._bind(ov, self._control_request, self._control_out)
        self._cur = 0
        self._check_precision(compiled)
        log.info("OpenVINO %s, CPU %s, %d thread(s), inference precision %s, model %s, image decoder: %s",
                 ov.__version__, " ".join(backend.cpu_capabilities()), self.num_threads, self.inference_precision, path,
                 self.image_decoder_status())

    def _without_image(self, ov: Any, model: Any) -> Any:
        """``model`` without the image output (OpenVINO compiles only what the kept outputs need), or ``None``."""
        image = self.spec.outputs.get("image")
        if not self.skip_image or image is None:
            return None
        results = list(model.get_results())
        kept = [r for r in results if image not in r.output(0).get_names()]
        if len(kept) == len(results):
            return None
        return ov.Model(kept, model.get_parameters(), f"{model.get_friendly_name()} without the image")

    def _bind(self, ov: Any, request: Any, outputs: dict[str, np.ndarray]) -> None:
        """Share the input buffers and ``outputs`` with ``request`` (the state is set per step)."""
        names_in, names_out = self.spec.inputs, self.spec.outputs
        for role, arr in self._in.items():
            request.set_tensor(names_in[role], ov.Tensor(arr, shared_memory=True))
        for role, arr in outputs.items():
            request.set_tensor(names_out[role], ov.Tensor(arr, shared_memory=True))

    @property
    def skips_image(self) -> bool:
        return self._control_request is not None

    def diagnostics(self) -> dict[str, str]:
        """Key/values for the node's ``/diagnostics``: threads, inference precision, image decoder."""
        return {
            "threads": str(self.num_threads),
            "inference_precision": self.inference_precision,
            "image_decoder": self.image_decoder_status(),
        }

    def _check_precision(self, compiled: Any) -> None:
        """The compiled model must run the arithmetic asked for (a plugin may not honour a hint)."""
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        got = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
        if got != self.inference_precision:
            raise BackendUnavailableError(f"OpenVINO compiled {self.precision} with inference precision {got}, not "
                                          f"{self.inference_precision}; use backend 'onnxruntime' for {self.precision}")

    def _check_io(self, compiled: Any, path: Any) -> None:
        """The graph must have exactly the tensors and shapes the sidecar promises."""
        have_in = {n: tuple(p.get_shape()) for p in compiled.inputs for n in p.get_names()}
        have_out = {n: tuple(p.get_shape()) for p in compiled.outputs for n in p.get_names()}
        problems = []
        for kind, names, shapes, have in (("input", self.spec.inputs, self.spec.input_shapes(), have_in),
                                          ("output", self.spec.outputs, self.spec.output_shapes(), have_out)):
            for role, name in names.items():
                if name not in have:
                    problems.append(f"{kind} {name!r} ({role}) missing")
                elif have[name] != tuple(shapes[role]):
                    problems.append(f"{kind} {name!r} has shape {have[name]}, sidecar implies {shapes[role]}")
        if problems:
            raise ModelError(f"{path} does not match model.json: {'; '.join(problems)}. Re-export the model.")

    def _close_impl(self) -> None:
        self._request = self._control_request = None
        self._in, self._out, self._control_out, self._state_bufs, self._state_tensors = {}, {}, {}, [], []

    def _infer_impl(self, image: np.ndarray, joint: np.ndarray) -> Mapping[str, np.ndarray]:
        return self._run(self._request, self._out, image, joint)

    def _infer_control_impl(self, image: np.ndarray, joint: np.ndarray) -> Mapping[str, np.ndarray]:
        return self._run(self._control_request, self._control_out, image, joint)

    def _run(self, request: Any, outputs: dict[str, np.ndarray], image: np.ndarray,
             joint: np.ndarray) -> Mapping[str, np.ndarray]:
        np.copyto(self._in["image"], image)
        np.copyto(self._in["joint"], joint)
        names_in, names_out = self.spec.inputs, self.spec.outputs
        src, dst = self._state_tensors[self._cur], self._state_tensors[1 - self._cur]
        request.set_tensor(names_in["state_h"], src[0])
        request.set_tensor(names_in["state_c"], src[1])
        request.set_tensor(names_out["state_h"], dst[0])
        request.set_tensor(names_out["state_c"], dst[1])
        started = time.perf_counter()
        request.infer()
        self.last_timings = {"compute": time.perf_counter() - started}
        self._cur = 1 - self._cur
        return outputs

    def _get_state_impl(self) -> RecurrentState:
        h, c = self._state_bufs[self._cur]
        return RecurrentState(h.copy(), c.copy())

    def _set_state_impl(self, state: RecurrentState) -> None:
        h, c = self._state_bufs[self._cur]
        np.copyto(h, state.h.reshape(h.shape))
        np.copyto(c, state.c.reshape(c.shape))
