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

- ``fp32``: ``model.onnx`` with ``INFERENCE_PRECISION_HINT=f32`` (bit-for-bit the ONNX graph's
  arithmetic up to kernel rounding; parity with ONNX Runtime is tested over 50 fed-back steps).
- ``int8``: the symmetric Q/DQ variant that ``eipl-trt quantize`` writes (``model.int8.onnx``); the
  CPU plugin folds the Q/DQ pairs into real int8 kernels where the CPU reports ``INT8``.
- ``fp16``: ``model.onnx`` with a reduced-precision *inference* hint: ``bf16`` on x86 CPUs that
  report ``BF16`` (AMX or AVX512-BF16), ``f16`` on CPUs that report ``FP16`` (ARMv8.2+). Refused
  with the reason on a CPU that has neither (OpenVINO would silently run fp32 there).

Needs the optional extra ``openvino`` (``pip install eipl_trt[openvino]``).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping

import numpy as np

from eipl_trt.errors import BackendUnavailableError, ModelError
from eipl_trt.runners.base import RecurrentState, Runner
from eipl_trt.spec import PRECISIONS, ModelSpec

__all__ = ["OvRunner", "available_precisions", "cpu_capabilities", "refused_precisions", "unavailable_reason"]

log = logging.getLogger(__name__)


def unavailable_reason() -> str:
    """Why OpenVINO cannot run here (``""`` when it can)."""
    try:
        import openvino as ov
    except ImportError:
        return "the openvino package is not installed (pip install eipl_trt[openvino])"
    try:
        if "CPU" not in ov.Core().available_devices:
            return "OpenVINO sees no CPU device"
    except Exception as exc:  # noqa: BLE001 - a broken install reports its own error types
        return f"OpenVINO failed to start: {exc}"
    return ""


def cpu_capabilities() -> list[str]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU (e.g. ``FP32 INT8 BF16``), ``[]`` without OpenVINO."""
    try:
        import openvino as ov

        return [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
    except Exception:  # noqa: BLE001 - absent or broken optional dependency
        return []


def reduced_float_hint(capabilities: list[str]) -> str:
    """The ``INFERENCE_PRECISION_HINT`` our ``fp16`` maps to on a CPU: ``bf16``, ``f16``, or ``""`` (none)."""
    if "BF16" in capabilities:
        return "bf16"
    if "FP16" in capabilities:
        return "f16"
    return ""


def refused_precisions(spec: ModelSpec) -> dict[str, str]:
    """Precision -> why OpenVINO cannot run it for ``spec`` on this CPU (absent when it can)."""
    caps = cpu_capabilities()
    refused: dict[str, str] = {}
    if not reduced_float_hint(caps):
        refused["fp16"] = (f"this CPU has neither BF16 (AMX/AVX512-BF16) nor FP16 arithmetic (OpenVINO reports "
                           f"{' '.join(caps) or 'nothing'}); reduced-precision floats would run as fp32")
    if "int8" not in spec.variants or spec.directory is None or not (spec.directory / spec.variants["int8"].file).is_file():
        refused["int8"] = "no int8 variant beside model.json; create it with `eipl-trt quantize --precision int8`"
    elif "INT8" not in caps:
        refused["int8"] = "OpenVINO reports no INT8 support on this CPU"
    return refused


def available_precisions(spec: ModelSpec) -> list[str]:
    """Precisions OpenVINO can run for ``spec`` here, in :data:`~eipl_trt.spec.PRECISIONS` order."""
    refused = refused_precisions(spec)
    return [p for p in PRECISIONS if p not in refused]


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
        why = unavailable_reason()
        if why:
            raise BackendUnavailableError(f"OpenVINO backend unavailable: {why}. Use backend 'onnxruntime'.")
        import openvino as ov

        refused = refused_precisions(self.spec).get(self.precision)
        if refused:
            raise BackendUnavailableError(f"OpenVINO cannot run {self.precision} here: {refused}")
        variant = "int8" if self.precision == "int8" else "fp32"
        path = self.spec.verify_variant(variant)
        self.inference_precision = reduced_float_hint(cpu_capabilities()) if self.precision == "fp16" else "f32"
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
        log.info("OpenVINO %s, CPU %s, %d thread(s), inference precision %s, model %s, image decoder: %s",
                 ov.__version__, " ".join(cpu_capabilities()), self.num_threads, self.inference_precision, path,
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
