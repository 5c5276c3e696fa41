"""The integer-only backend: a model that runs on integers alone, behind the Runner interface (numpy).

Backend protocol (:mod:`eipl_trt.runners.registry`): :func:`unavailable_reason`,
:func:`refused_precisions`, :func:`create`; ``auto`` never picks it. :mod:`runner`
(:class:`IntegerRunner`) over the bit-exact engine: :mod:`model` (the ``intmodel.json`` +
``intmodel.npz`` file format and memory plan), :mod:`execute` (the executor), :mod:`fixed`
(multiplier + shift requantization, LUTs), :mod:`ops` (numpy convolutions) and :mod:`rounding`
(rounding modes, saturation, scales). The quantization lab (:mod:`eipl_trt.precision.lab`) builds
these models and reuses the same engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eipl_trt.runners.integer.runner import IntegerRunner
from eipl_trt.spec import PRECISIONS, ModelSpec

__all__ = ["INTEGER_MODEL_DIR", "IntegerRunner", "backend_version", "create", "integer_model_dir", "refused_precisions",
           "unavailable_reason"]

#: Where the integer backend looks for the integer-only model: this folder of the model directory,
#: written by ``eipl-trt quantlab integer --model DIR --out DIR/intonly``.
INTEGER_MODEL_DIR = "intonly"


def integer_model_dir(spec: ModelSpec) -> Path | None:
    """The integer-only model folder of ``spec`` (``<model dir>/intonly``), ``None`` without a directory."""
    return None if spec.directory is None else spec.directory / INTEGER_MODEL_DIR


def unavailable_reason() -> str:
    """Always runnable: numpy only."""
    return ""


def backend_version() -> str:
    import numpy

    return f"numpy {numpy.__version__}"


def refused_precisions(spec: ModelSpec) -> dict[str, str]:
    """It runs ``int8`` only, and only where the integer-only model has been written."""
    folder = integer_model_dir(spec)
    refused = {p: "the integer backend runs only int8 (integer arithmetic throughout)" for p in PRECISIONS if p != "int8"}
    if folder is None or not (folder / "intmodel.json").is_file():
        refused["int8"] = (f"no integer-only model in {folder}; write it with `eipl-trt quantlab integer --model "
                           f"{spec.directory} --calibration DATA --out {folder}`")
    return refused


def create(spec: ModelSpec, precision: str, *, num_threads: int | None = None, **options: Any) -> IntegerRunner:
    """A closed :class:`IntegerRunner` of ``<model dir>/intonly`` at ``int8``."""
    return IntegerRunner(spec, integer_model_dir(spec), precision=precision)
