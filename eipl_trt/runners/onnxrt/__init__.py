"""The ONNX Runtime backend: any CPU, the exported ONNX variants as they are (the reference).

Backend protocol (:mod:`eipl_trt.runners.registry`): :func:`unavailable_reason`,
:func:`refused_precisions`, :func:`create`. The runner is :class:`~.runner.OrtRunner`; the exact CPU
graph rewrites it applies are in :mod:`eipl_trt.runners.cpu_graph`.
"""

from __future__ import annotations

from typing import Any

from eipl_trt.runners.onnxrt.runner import OrtRunner
from eipl_trt.spec import PRECISIONS, ModelSpec

__all__ = ["OrtRunner", "backend_version", "create", "refused_precisions", "unavailable_reason"]


def unavailable_reason() -> str:
    """Why ONNX Runtime cannot run here (``""`` when it can)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return f"onnxruntime cannot be imported ({exc}); pip install onnxruntime"
    return ""


def backend_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def refused_precisions(spec: ModelSpec) -> dict[str, str]:
    """Precision -> why ONNX Runtime cannot run it for ``spec``: it runs the ONNX variants beside ``model.json``."""
    refused: dict[str, str] = {}
    for precision in PRECISIONS:
        if precision == "bf16":
            refused[precision] = ("ONNX Runtime's CPU kernels have no bf16 path for these models; use backend openvino "
                                  "on a CPU with BF16 (AMX or AVX512-BF16)")
        elif precision not in spec.variants:
            refused[precision] = (f"model.json lists no {precision} variant; create it with "
                                  f"`eipl-trt quantize --model {spec.directory or 'DIR'} --precision {precision}`")
        elif spec.directory is None or not (spec.directory / spec.variants[precision].file).is_file():
            refused[precision] = f"{spec.variants[precision].file} is listed in model.json but missing"
    return refused


def create(spec: ModelSpec, precision: str, *, num_threads: int | None = None, **options: Any) -> OrtRunner:
    """A closed :class:`OrtRunner` (options meant for other backends, e.g. TensorRT's, are ignored)."""
    return OrtRunner(spec, precision, num_threads=num_threads)
