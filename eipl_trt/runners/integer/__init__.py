"""The integer-only backend: a model that runs on integers alone, behind the Runner interface (numpy).

:mod:`runner` (:class:`IntegerRunner`, the ``integer`` backend of
:func:`eipl_trt.runners.create_runner`) over the bit-exact engine: :mod:`model` (the
``intmodel.json`` + ``intmodel.npz`` file format and memory plan), :mod:`execute` (the executor),
:mod:`fixed` (multiplier + shift requantization, LUTs), :mod:`ops` (numpy convolutions) and
:mod:`rounding` (rounding modes, saturation, scales). The quantization lab
(:mod:`eipl_trt.precision.lab`) builds these models and reuses the same engine.
"""

from __future__ import annotations

from eipl_trt.runners.integer.runner import IntegerRunner

__all__ = ["IntegerRunner"]
