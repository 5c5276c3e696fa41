"""Integer-only EIPL models: conversion, a bit-exact numpy executor, a file format and a memory plan.

    model = build_integer(spec, calibration_episodes)        # IntModel
    model.save("out/")                                        # intmodel.json + intmodel.npz
    IntExecutor(IntModel.load("out/")).run(feeds)            # float in/out, integers inside

Modules: :mod:`convert` (FP32 graph to :class:`IntModel`) and :mod:`cli`; the fixed-point helpers,
the executor and the file format are in :mod:`eipl_trt.runners.integer` (``fixed``, ``execute``,
``model``) and re-exported here.
"""

from __future__ import annotations

from typing import Sequence

from eipl_trt.precision.calibration import EpisodeTensors
from eipl_trt.precision.lab.executor import Executor, Graph
from eipl_trt.precision.lab.integer.convert import convert
from eipl_trt.runners.integer.execute import IntExecutor
from eipl_trt.runners.integer.model import IntModel, memory_plan
from eipl_trt.spec import ModelSpec

__all__ = ["IntModel", "IntExecutor", "build_integer", "convert", "memory_plan"]


def build_integer(spec: ModelSpec, calibration: Sequence[EpisodeTensors], *, steps: int | None = None,
                  headroom: float = 1.25, act_bits: int = 8, state_bits: int = 16, pow2: bool = False,
                  float_layers: Sequence[str] = (), graph: Graph | None = None,
                  wide_elements: int = 1024, lut_bits: int = 10) -> IntModel:
    """Calibrate on FP32 replays of ``calibration`` (state fed back) and convert (see :func:`convert`).

    The recurrent state's input and output share one scale, so the state is handed from step to
    step as the same integer codes.
    """
    from eipl_trt.precision.lab.sweep import Lab

    g = graph or Graph(spec.verify_variant("fp32"))
    lab = Lab.__new__(Lab)  # only its FP32 feed generator is needed
    lab.spec, lab.graph, lab.steps = spec, g, steps
    ex = Executor(g)
    ranges: dict[str, float] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for e in calibration:
        for feed in lab._feeds_fp32([lab._cut(e)]):
            ex.run(feed, record=ranges, shapes=shapes)
    ranges = {k: v * headroom for k, v in ranges.items()}
    state = []
    for role in ("state_h", "state_c"):
        i, o = spec.inputs[role], spec.outputs[role]
        ranges[i] = ranges[o] = max(ranges.get(i, 0.0), ranges.get(o, 0.0))
        state += [i, o]
    model = convert(g, ranges, shapes, act_bits=act_bits, state_bits=state_bits, pow2=pow2,
                    float_layers=float_layers, state=state, wide_elements=wide_elements,
                    lut_bits=lut_bits)
    model.meta.update({"model": spec.model, "headroom": headroom, "calibration_steps":
                       sum(len(e) if steps is None else min(len(e), steps) for e in calibration),
                       "roles": {"inputs": dict(spec.inputs), "outputs": dict(spec.outputs)}})
    return model
