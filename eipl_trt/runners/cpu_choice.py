"""Which CPU backend ``backend: auto`` runs, per precision: a measured preference order plus a parity check.

Design (issue #10): ``auto`` must run the fastest installed backend that computes the same thing.
Timing candidates at every start would cost seconds on a small robot computer and make the choice
depend on the load of the moment, so the *order* is static, taken from side-by-side measurements
(``eipl-trt bench --backend onnxruntime openvino``, README "CPU backends") and keyed by what the
CPU can do (:func:`preference`), and what is checked at run time is *correctness*: before a non-reference backend is chosen, it runs
:data:`PARITY_STEPS` steps of the model with the state fed back beside ONNX Runtime (the reference
the exports are validated against) on the same inputs; if its outputs drift by more than the
precision's tolerance, ``auto`` logs why and takes the next backend. The verdict is kept for the
process (per model file and precision), so a precision switch or a second node pays it once.

``EIPL_TRT_CPU_BACKEND=onnxruntime|openvino`` overrides the order (still parity-checked).
"""

from __future__ import annotations

import logging
import os
import platform
import threading

import numpy as np

from eipl_trt.errors import EipltrtError
from eipl_trt.spec import ModelSpec

__all__ = ["PARITY_STEPS", "PARITY_TOLERANCE", "choose_cpu_backend", "parity_error", "preference"]

log = logging.getLogger(__name__)


def preference(precision: str, capabilities: list[str], machine: str | None = None) -> tuple[str, ...]:
    """CPU backends fastest first for ``precision`` on a CPU with OpenVINO ``capabilities``.

    ``machine`` is ``platform.machine()`` (default: this one's).

    - ``fp16``: OpenVINO first (its bf16/f16 inference hint is real reduced-precision arithmetic;
      ONNX Runtime runs the fp16 variant through casts on a CPU without FP16 units).
    - ``fp32``/``int8`` on a CPU with ``BF16`` (AMX / AVX512-BF16 class x86): OpenVINO first; the
      issue measured OpenVINO 2026.4 fp32 at 0.79x ONNX Runtime's SARNN step on such a CPU (not
      re-measured by us: our bench machine has no AMX).
    - ``int8`` on other x86 CPUs with ``INT8``: OpenVINO first. On the AVX2 bench machine, in the
      node's usual step (no predicted image, which both backends skip) its int8 took 0.71x, 1.02x and
      0.45x of ONNX Runtime's int8 on SARNN, CNNRNN and CNNRNNLN (README "CPU backends"). The shipped
      int8 variant is in TensorRT's Q/DQ form, which ONNX Runtime's CPU kernels do not fuse. Where
      OpenVINO's int8 drifts from ONNX Runtime's (SARNN's), the parity check keeps ONNX Runtime.
    - ``fp32`` elsewhere, and ``int8`` on ARM (not measured): ONNX Runtime first. On the AVX2 bench
      machine OpenVINO fp32 took 1.2x-2.4x ONNX Runtime's step without the image, and 0.90x-2.1x
      with it.
    """
    if precision == "fp16" or "BF16" in capabilities:
        return ("openvino", "onnxruntime")
    machine = (platform.machine() if machine is None else machine).lower()
    if precision == "int8" and "INT8" in capabilities and machine in ("x86_64", "amd64", "i686", "x86"):
        return ("openvino", "onnxruntime")
    return ("onnxruntime", "openvino")


#: Steps of the parity check (state fed back).
PARITY_STEPS = 10
#: Largest allowed |difference| of the normalized joint output vs ONNX Runtime, per precision.
PARITY_TOLERANCE = {"fp32": 1e-4, "fp16": 5e-2, "int8": 5e-2}

_verdicts: dict[tuple[str, str, str], float] = {}
_lock = threading.Lock()


def _installed(backend: str) -> bool:
    if backend == "openvino":
        from eipl_trt.runners import openvino as ov_runner

        return not ov_runner.unavailable_reason()
    return True


def parity_error(spec: ModelSpec, backend: str, precision: str, steps: int = PARITY_STEPS, seed: int = 0) -> float:
    """Max |joint output difference| of ``backend`` vs ONNX Runtime over ``steps`` fed-back steps.

    The reference runs the same ONNX variant on ONNX Runtime (the fp32 one for a backend's
    ``fp16``, which is an inference-precision hint on the fp32 graph).
    """
    from eipl_trt.runners import create_runner

    ref_precision = precision if precision in spec.variants else "fp32"
    if backend == "openvino" and precision == "fp16":
        ref_precision = "fp32"
    rng = np.random.default_rng(seed)
    shapes = spec.input_shapes()
    lo, hi = float(spec.vmin), float(spec.vmax)
    worst = 0.0
    with create_runner(spec, "onnxruntime", ref_precision) as ref, create_runner(spec, backend, precision) as cand:
        for _ in range(steps):
            image = rng.uniform(lo, hi, shapes["image"]).astype(np.float32)
            joint = rng.uniform(lo, hi, shapes["joint"]).astype(np.float32)
            a = ref.infer(image, joint)["joint"].copy()
            b = cand.infer(image, joint)["joint"]
            worst = max(worst, float(np.max(np.abs(a - b))))
    return worst


def choose_cpu_backend(spec: ModelSpec, precision: str = "fp32") -> str:
    """The CPU backend ``auto`` runs ``spec`` at ``precision`` on: first in the order that is
    installed, offers the precision, and passes the parity check; ONNX Runtime otherwise."""
    from eipl_trt.runners import available_precisions
    from eipl_trt.runners.openvino import cpu_capabilities

    order = list(preference(precision, cpu_capabilities()))
    pinned = os.environ.get("EIPL_TRT_CPU_BACKEND", "").strip()
    if pinned:
        if pinned not in ("onnxruntime", "openvino"):
            log.warning("EIPL_TRT_CPU_BACKEND=%r is not onnxruntime or openvino; ignored", pinned)
        else:
            order = [pinned] + [b for b in order if b != pinned]
    for backend in order:
        if not _installed(backend) or precision not in available_precisions(spec, backend):
            continue
        if backend == "onnxruntime":
            return backend
        key = (str(spec.variant_path(precision if precision in spec.variants else "fp32")), precision, backend)
        with _lock:
            if key not in _verdicts:
                try:
                    _verdicts[key] = parity_error(spec, backend, precision)
                except EipltrtError as exc:
                    log.warning("backend auto: %s cannot run %s %s (%s)", backend, spec.model, precision, exc)
                    _verdicts[key] = float("inf")
            err = _verdicts[key]
        tol = PARITY_TOLERANCE.get(precision, 1e-4)
        if err <= tol:
            return backend
        log.warning("backend auto: %s %s differs from ONNX Runtime by %.3g (> %.3g) on %s; not used",
                    backend, precision, err, tol, spec.model)
    return "onnxruntime"
