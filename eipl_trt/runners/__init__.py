"""Runners: one interface, one implementation per backend.

Use :func:`create_runner` to get a runner for a model, backend and precision, and
:func:`available_precisions` to ask what a backend can run here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from eipl_trt.errors import BackendUnavailableError
from eipl_trt.runners.base import RecurrentState, Runner
from eipl_trt.spec import PRECISIONS, ModelSpec

__all__ = ["BACKENDS", "INTEGER_MODEL_DIR", "RecurrentState", "Runner", "available_precisions", "create_runner",
           "integer_model_dir", "resolve_backend", "tensorrt_unavailable_reason"]

log = logging.getLogger(__name__)

#: Backend names accepted by :func:`create_runner` (``auto`` picks the best available; it never picks
#: ``integer``, the quantization lab's bit-exact integer-only executor: numpy, slow, for FPGA/MCU studies).
BACKENDS = ("auto", "onnxruntime", "tensorrt", "openvino", "integer")

#: Where the ``integer`` backend looks for the integer-only model: this folder of the model directory,
#: written by ``eipl-trt quantlab integer --model DIR --out DIR/intonly``.
INTEGER_MODEL_DIR = "intonly"


def integer_model_dir(spec: ModelSpec) -> Path | None:
    """The integer-only model folder of ``spec`` (``<model dir>/intonly``), ``None`` without a directory."""
    return None if spec.directory is None else spec.directory / INTEGER_MODEL_DIR


def tensorrt_unavailable_reason() -> str:
    """Why the TensorRT backend cannot run here (``""`` when it can).

    Names the cause: no ``tensorrt`` module, no cuda-python/pycuda, or CUDA's own error
    (``cudaErrorInsufficientDriver`` without a driver, ``cudaErrorNoDevice`` without a GPU).
    ``backend: auto`` logs it and diagnostics show it when it falls back to ONNX Runtime.
    """
    from eipl_trt.runners import tensorrt as trt_runner

    return trt_runner.unavailable_reason()


def _tensorrt_usable() -> tuple[bool, str]:
    """Whether the TensorRT backend can run here, and why not."""
    why = tensorrt_unavailable_reason()
    return not why, why


def resolve_backend(backend: str, spec: ModelSpec | None = None, precision: str = "fp32") -> str:
    """Map ``auto`` to a concrete backend and validate names.

    ``auto``: TensorRT when usable. Otherwise, given ``spec``, the CPU backend
    :func:`eipl_trt.runners.cpu_choice.choose_cpu_backend` picks for ``precision`` (the measured
    preference order, OpenVINO only when installed and at parity with ONNX Runtime on this model);
    without ``spec``, ONNX Runtime.

    Raises:
        BackendUnavailableError: unknown name, or ``tensorrt``/``openvino`` requested where it cannot run.
    """
    if backend not in BACKENDS:
        raise BackendUnavailableError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    trt_ok, why = _tensorrt_usable()
    if backend == "auto":
        if trt_ok:
            return "tensorrt"
        if spec is not None:
            from eipl_trt.runners.cpu_choice import choose_cpu_backend

            chosen = choose_cpu_backend(spec, precision)
        else:
            chosen = "onnxruntime"
        log.info("backend auto -> %s (TensorRT: %s)", chosen, why)
        return chosen
    if backend == "tensorrt" and not trt_ok:
        raise BackendUnavailableError(f"TensorRT backend unavailable: {why}. Use backend 'onnxruntime' (CPU).")
    if backend == "openvino":
        from eipl_trt.runners import openvino as ov_runner

        ov_why = ov_runner.unavailable_reason()
        if ov_why:
            raise BackendUnavailableError(f"OpenVINO backend unavailable: {ov_why}. Use backend 'onnxruntime'.")
    return backend


def available_precisions(spec: ModelSpec, backend: str = "auto") -> list[str]:
    """Precisions ``backend`` can run for ``spec`` on this machine, in :data:`PRECISIONS` order.

    ONNX Runtime runs the variants exported beside ``model.json`` (fp32 always; fp16/int8 when
    ``eipl-trt quantize`` made them).
    """
    backend = resolve_backend(backend, spec)
    if backend == "openvino":
        from eipl_trt.runners import openvino as ov_runner

        return ov_runner.available_precisions(spec)
    if backend == "onnxruntime":
        have = [p for p in PRECISIONS if p in spec.variants and spec.directory is not None
                and (spec.directory / spec.variants[p].file).is_file()]
        return have
    if backend == "integer":
        folder = integer_model_dir(spec)
        return ["int8"] if folder is not None and (folder / "intmodel.json").is_file() else []
    from eipl_trt.runners import tensorrt as trt_runner

    return trt_runner.available_precisions(spec)


def create_runner(
    spec: ModelSpec,
    backend: str = "auto",
    precision: str = "fp32",
    num_threads: int | None = None,
    **trt_options: Any,
) -> Runner:
    """A closed runner for ``spec`` on ``backend`` at ``precision``; call ``open()`` on it.

    ``trt_options`` go to :class:`~eipl_trt.runners.tensorrt.TrtRunner` (``cuda_graphs``,
    ``cache_dir``, ...) and are ignored by ONNX Runtime. The ``integer`` backend runs the integer-only
    model in ``<model dir>/intonly`` (:data:`INTEGER_MODEL_DIR`) at precision ``int8``: int8 weights
    and activations, integer arithmetic throughout (:mod:`eipl_trt.precision.lab`).

    Raises:
        BackendUnavailableError: the backend or precision cannot run here; the message lists what can.
    """
    if precision not in PRECISIONS:
        raise BackendUnavailableError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    backend = resolve_backend(backend, spec, precision)
    have = available_precisions(spec, backend)
    if precision not in have:
        raise BackendUnavailableError(
            f"precision {precision} is not available for model {spec.model!r} on {backend} "
            f"(available: {', '.join(have) or 'none'}). "
            + ("ONNX Runtime runs the ONNX variants listed in model.json; create an int8/fp16 variant with "
               "`eipl-trt quantize`." if backend == "onnxruntime" else _refusal(spec, backend, precision))
        )
    if backend == "openvino":
        from eipl_trt.runners.openvino import OvRunner

        return OvRunner(spec, precision, num_threads=num_threads)
    if backend == "integer":
        from eipl_trt.runners.integer.runner import IntegerRunner

        return IntegerRunner(spec, integer_model_dir(spec), precision=precision)
    if backend == "onnxruntime":
        from eipl_trt.runners.onnxrt import OrtRunner

        return OrtRunner(spec, precision, num_threads=num_threads)
    from eipl_trt.runners import tensorrt as trt_runner

    return trt_runner.TrtRunner(spec, precision, **trt_options)


def _refusal(spec: ModelSpec, backend: str, precision: str) -> str:
    if backend == "integer":
        folder = integer_model_dir(spec)
        return (f"The integer backend runs only int8, from the integer-only model in {folder}; write it with "
                f"`eipl-trt quantlab integer --model {spec.directory} --calibration DATA --out {folder}`.")
    if backend == "openvino":
        from eipl_trt.runners import openvino as ov_runner

        why = ov_runner.refused_precisions(spec).get(precision)
        return f"OpenVINO refuses it: {why}." if why else "model.json lists no such ONNX variant."
    from eipl_trt.runners import tensorrt as trt_runner

    why = trt_runner.refused_precisions(spec).get(precision)
    return f"TensorRT refuses it: {why}." if why else "model.json lists no such ONNX variant."
