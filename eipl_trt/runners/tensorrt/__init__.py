"""The TensorRT backend (TensorRT 8.6, 10.x, 11.x; cuda-python or pycuda).

Modules: :mod:`.cuda_api` (the CUDA facade's interface), :mod:`.cuda` (cuda-python, and
:func:`load_cuda`) and :mod:`.cuda_pycuda` (pycuda),
:mod:`.api` (module loading, logger), :mod:`.builder` (ONNX variant -> plan),
:mod:`.cache` (keyed, locked, atomic plan cache), :mod:`.buffers` (aligned arenas),
:mod:`.runner` (:class:`TrtRunner`), :mod:`.inspect` (engine inspector and per-layer profile).
"""

from __future__ import annotations

from typing import Any

from eipl_trt.errors import BackendUnavailableError
from eipl_trt.runners.tensorrt.api import import_tensorrt, meets
from eipl_trt.runners.tensorrt.cache import EngineCache, default_cache_dir
from eipl_trt.runners.tensorrt.cuda import load_cuda
from eipl_trt.runners.tensorrt.runner import TrtRunner
from eipl_trt.spec import PRECISIONS, ModelSpec

__all__ = ["TrtRunner", "EngineCache", "available_precisions", "backend_version", "create", "default_cache_dir",
           "unavailable_reason", "refused_precisions"]


def unavailable_reason() -> str:
    """Why TensorRT cannot run here (``""`` when it can): no tensorrt module, no CUDA library, no GPU/driver."""
    try:
        import_tensorrt()
        load_cuda()
    except BackendUnavailableError as exc:
        return str(exc)
    return ""


def refused_precisions(spec: ModelSpec) -> dict[str, str]:
    """``precision -> reason`` for every precision this TensorRT cannot build for ``spec``.

    It builds the ONNX variants listed in ``model.json`` (fp32 with TF32 off, fp16, int8); ``bf16`` engines
    are not built by eipl_trt.
    """
    trt = import_tensorrt()
    out: dict[str, str] = {"bf16": "eipl_trt builds fp32, fp16 and int8 TensorRT engines; use fp16 on a GPU"}
    for precision in PRECISIONS:
        if precision != "bf16" and precision not in spec.variants:
            out[precision] = (f"model.json lists no {precision} variant; create it with "
                              f"`eipl-trt quantize --precision {precision}`")
    for precision, variant in spec.variants.items():
        if spec.directory is None or not (spec.directory / variant.file).is_file():
            out[precision] = f"{variant.file} is listed in model.json but missing"
        elif not meets(trt.__version__, variant.min_tensorrt):
            out[precision] = f"needs TensorRT >= {variant.min_tensorrt}, this is {trt.__version__}"
    return out


def available_precisions(spec: ModelSpec) -> list[str]:
    """The precisions of ``spec`` this TensorRT can build, in :data:`PRECISIONS` order."""
    refused = refused_precisions(spec)
    return [p for p in PRECISIONS if p not in refused]


def backend_version() -> str:
    return str(import_tensorrt().__version__)


def create(spec: ModelSpec, precision: str, *, num_threads: int | None = None, **options: Any) -> TrtRunner:
    """A closed :class:`TrtRunner` (``cuda_graphs``, ``cache_dir``, ... as keyword options; threads are unused)."""
    return TrtRunner(spec, precision, **options)
