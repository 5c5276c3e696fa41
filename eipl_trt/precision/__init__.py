"""Precision variants TensorRT can build, made and checked on the CPU: FP16 and symmetric INT8 Q/DQ.

TensorRT 11 has no FP16/INT8 builder flags: a network's precision is whatever its ONNX file says
(TensorRT 10 reads the same files strongly typed; 8.6 with its FP16/INT8 flags). So each precision
is an ONNX file beside ``model.onnx``, registered in ``model.json`` with its hash, opset, oldest
TensorRT and the recipe that made it:

* ``model.fp16.onnx``: FP16 compute with FP32 graph inputs and outputs; FP32 kept where the
  activations seen on real frames exceed FP16's safe range or the sensitivity pass says so
  (:mod:`~eipl_trt.precision.fp16`);
* ``model.int8.onnx``: int8 activations and per-channel int8 weights, zero points 0, for the
  layers the per-layer sensitivity pass admits (:mod:`~eipl_trt.precision.int8`).

Modules: :mod:`calibration` (closed-loop rollouts), :mod:`rollout` (held-out scoring),
:mod:`sensitivity` (the pass), :mod:`recipes` (the two recipes), :mod:`register` (interrupt-safe
commit into the model directory), :mod:`graph`. Progress goes through :mod:`eipl_trt.common.progress`.

    eipl-trt quantize --model engines/sarnn --precision fp16 int8 --calibration data_work/pusher --sensitivity
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Mapping, Sequence, TextIO

import numpy as np

from eipl_trt.precision.calibration import EpisodeTensors, feeds_sha256, prepare_episodes, record_calibration_feeds
from eipl_trt.precision.recipes import Built, Options, build_variants
from eipl_trt.precision.register import NewVariant, commit_variants, recover
from eipl_trt.spec import VARIANT_FILES, ModelSpec

__all__ = [
    "Built",
    "EpisodeTensors",
    "Options",
    "VARIANT_FILES",
    "make_variants",
    "prepare_episodes",
    "quantize_int8",
    "record_calibration_feeds",
    "recover",
]


def make_variants(
    spec: ModelSpec,
    episodes: Sequence[EpisodeTensors],
    precisions: Sequence[str] = ("fp16", "int8"),
    options: Options = Options(),
    out: TextIO | None = None,
    calibration_source: str = "",
) -> tuple[ModelSpec, Built]:
    """Build the variants (:func:`~eipl_trt.precision.recipes.build_variants`) and commit them together.

    Returns:
        The saved spec and what was built (tables, recipes).
    """
    assert spec.directory is not None, "the spec must be loaded from a model directory"
    recover(spec.directory)
    built = build_variants(spec, episodes, precisions, options, out, calibration_source)
    return commit_variants(spec, built.variants), built


def quantize_int8(
    spec: ModelSpec,
    feeds: Sequence[Mapping[str, np.ndarray]],
    method: str = "minmax",
    nodes: Sequence[str] | None = None,
) -> ModelSpec:
    """Write an INT8 variant that quantizes ``nodes`` (default: every Conv/ConvTranspose), without a sensitivity pass.

    For tests and quick experiments; ``eipl-trt quantize`` chooses the layers with the pass.

    Raises:
        InputError: no calibration data, an unknown method or node.
    """
    from eipl_trt.precision.graph import default_opset, min_tensorrt
    from eipl_trt.precision.int8 import Int8Quantizer

    assert spec.directory is not None, "the spec must be loaded from a model directory"
    source = spec.verify_variant("fp32")
    with tempfile.TemporaryDirectory(prefix="eipl_trt-int8-") as work:
        quantizer = Int8Quantizer(source, feeds, Path(work), method)
        if nodes is None:
            graph = quantizer.model.graph
            nodes = [n.name for n in graph.node if n.op_type in ("Conv", "ConvTranspose") and n.name in quantizer.candidates]
        model = quantizer.quantize(list(nodes))
    recipe = {"tool": "eipl_trt.precision.int8 (symmetric int8 Q/DQ)", "method": method,
              "quantized_nodes": list(nodes), "calibration": {"steps": len(feeds), "sha256": feeds_sha256(feeds)}}
    variant = NewVariant("int8", model.SerializeToString(), default_opset(model), min_tensorrt(model), recipe)
    return commit_variants(spec, [variant])
