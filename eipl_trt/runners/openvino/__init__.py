"""The OpenVINO backend: a second CPU backend (x86 and ARM) behind the same runner interface.

Backend protocol (:mod:`eipl_trt.runners.registry`): :func:`unavailable_reason`,
:func:`refused_precisions`, :func:`create`. What each precision computes is in
:mod:`~eipl_trt.runners.openvino.runner`. Needs the optional extra ``openvino``.
"""

from __future__ import annotations

from typing import Any

from eipl_trt.runners.openvino.capabilities import (
    backend_version, cpu_capabilities, refused_precisions, unavailable_reason,
)
from eipl_trt.runners.openvino.runner import INFERENCE_PRECISION, OvRunner
from eipl_trt.spec import ModelSpec

__all__ = ["INFERENCE_PRECISION", "OvRunner", "backend_version", "cpu_capabilities", "create", "refused_precisions",
           "unavailable_reason"]


def create(spec: ModelSpec, precision: str, *, num_threads: int | None = None, **options: Any) -> OvRunner:
    """A closed :class:`OvRunner` (``skip_image`` may be passed; other backends' options are ignored)."""
    return OvRunner(spec, precision, num_threads=num_threads, skip_image=bool(options.get("skip_image", True)))
