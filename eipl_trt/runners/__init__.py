"""Runners: one interface, one package per backend, one registry that chooses.

:func:`choose` (from :mod:`.registry`) resolves a backend request once into a :class:`Choice`;
:func:`create_runner` is the short form that returns the closed runner, and :func:`available_precisions`
says what a backend (or ``auto``) can run here. Backends: :mod:`.tensorrt`, :mod:`.onnxrt`,
:mod:`.openvino`, :mod:`.integer` (and :mod:`.torch_eager`, the eager PyTorch baseline of the
benchmarks, which is not a deployment backend). ``auto``'s CPU policy is :mod:`.auto`.
"""

from __future__ import annotations

import logging
from typing import Any

from eipl_trt.runners import registry
from eipl_trt.runners.base import RecurrentState, Runner
from eipl_trt.runners.integer import INTEGER_MODEL_DIR, integer_model_dir
from eipl_trt.runners.registry import AUTO, NAMES, Choice, choose
from eipl_trt.runners.registry import available_precisions as _backend_precisions
from eipl_trt.runners.registry import unavailable_reason
from eipl_trt.spec import PRECISIONS, ModelSpec

__all__ = ["BACKENDS", "INTEGER_MODEL_DIR", "Choice", "RecurrentState", "Runner", "available_precisions", "choose",
           "create_runner", "integer_model_dir", "resolve_backend", "tensorrt_unavailable_reason"]

log = logging.getLogger(__name__)

#: Backend names accepted by :func:`create_runner` and the node's ``backend`` parameter (``auto`` picks; it
#: never picks ``integer``, the quantization lab's integer-only executor: numpy, slow, for FPGA/MCU studies).
BACKENDS = NAMES


def tensorrt_unavailable_reason() -> str:
    """Why the TensorRT backend cannot run here (``""`` when it can), probed once per process.

    Names the cause: no ``tensorrt`` module, no cuda-python/pycuda, or CUDA's own error
    (``cudaErrorInsufficientDriver`` without a driver, ``cudaErrorNoDevice`` without a GPU).
    """
    return unavailable_reason("tensorrt")


def resolve_backend(backend: str, spec: ModelSpec | None = None, precision: str = "fp32") -> str:
    """The concrete backend ``backend`` means for ``spec`` at ``precision`` (:func:`choose`'s ``backend``).

    Without ``spec``, ``auto`` is TensorRT where usable, else ONNX Runtime (the reference).

    Raises:
        BackendUnavailableError: unknown name, or a backend that cannot run here.
    """
    if spec is not None:
        return choose(spec, backend, precision).backend
    if backend == AUTO:
        return "tensorrt" if not tensorrt_unavailable_reason() else "onnxruntime"
    if backend not in NAMES:
        from eipl_trt.errors import BackendUnavailableError

        raise BackendUnavailableError(f"unknown backend {backend!r}; choose one of {', '.join(NAMES)}")
    why = unavailable_reason(backend)
    if why:
        from eipl_trt.errors import BackendUnavailableError

        raise BackendUnavailableError(f"{registry._get(backend).label} backend unavailable: {why}. "
                                      f"Use backend 'onnxruntime' (CPU).")
    return backend


def available_precisions(spec: ModelSpec, backend: str = AUTO) -> list[str]:
    """Precisions ``backend`` runs for ``spec`` here, in :data:`PRECISIONS` order.

    ``auto``: those some backend ``auto`` considers runs (TensorRT's where it is usable; else every CPU
    backend's), each under its own name.
    """
    if backend != AUTO:
        resolve_backend(backend)
        return _backend_precisions(spec, backend)
    if not tensorrt_unavailable_reason():
        return _backend_precisions(spec, "tensorrt")
    have = {p for name in ("onnxruntime", "openvino") for p in _backend_precisions(spec, name)}
    return [p for p in PRECISIONS if p in have]


def create_runner(spec: ModelSpec, backend: str = AUTO, precision: str = "fp32", num_threads: int | None = None,
                  **options: Any) -> Runner:
    """A closed runner for ``spec`` on ``backend`` at ``precision``; call ``open()`` on it.

    ``options`` go to the backend (TensorRT's ``cuda_graphs``, ``cache_dir``, ...); the others ignore
    what they do not take. ``choose(spec, backend, precision)`` gives the same runner with the reasons.

    Raises:
        BackendUnavailableError: the backend or precision cannot run here; the message lists what can.
    """
    return choose(spec, backend, precision, num_threads=num_threads).create(spec, num_threads, **options)
