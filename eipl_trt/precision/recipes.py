"""Build the FP16 and INT8 variants of a model: calibrate, measure per-layer sensitivity, choose, check.

Both recipes share one flow:

1. preprocess the episodes once; the last ``heldout`` episodes are kept out of calibration and
   serve the sensitivity pass (the test split is never touched: calibrate on ``train``);
2. closed-loop FP32 rollouts over the other episodes record the calibration samples (state included);
3. candidate groups are scored one at a time (:mod:`eipl_trt.precision.sensitivity`) and the largest
   set that keeps the joint replay within budget is chosen;
4. the final model is built, checked (structure, opset, ONNX Runtime load) and described in a
   ``recipe`` that goes into ``model.json`` with the file.

FP16 groups are modules (a conv with its activation, a LayerNorm, the spatial softmax span, the
LSTM cell); nodes whose activations exceed ``data_max`` on the calibration frames stay FP32 before
the pass starts. INT8 groups are single layers (Conv, ConvTranspose, Gemm, MatMul).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TextIO

import numpy as np

import eipl_trt
from eipl_trt.common.progress import Progress
from eipl_trt.errors import InputError, ModelError
from eipl_trt.precision.calibration import EpisodeTensors, StepModel, feeds_sha256, record_calibration_feeds
from eipl_trt.precision.fp16 import FP16_MAX, convert_fp16
from eipl_trt.precision.graph import (
    SHAPE_OPS, NodeGroup, default_opset, float_tensors, group_nodes, import_onnx, min_tensorrt, producers,
    short_name, tensor_stats,
)
from eipl_trt.precision.int8 import CANDIDATE_OPS, Int8Quantizer, int8_problems
from eipl_trt.precision.register import NewVariant
from eipl_trt.precision.rollout import Scorer
from eipl_trt.precision.sensitivity import format_table, measure, select
from eipl_trt.spec import ModelSpec

__all__ = ["Options", "Built", "build_variants"]

log = logging.getLogger(__name__)

ACTIVATION_OPS = frozenset({"LeakyRelu", "Relu", "Tanh", "Sigmoid"})


@dataclass(frozen=True)
class Options:
    """Knobs of :func:`build_variants` (defaults are what the bundled models were made with).

    Attributes:
        method: INT8 range calibration (``minmax``, ``entropy``, ``percentile``).
        max_feeds: calibration samples (steps) recorded in total.
        heldout: episodes kept for the sensitivity pass (the last ones given).
        heldout_steps: steps replayed per held-out episode (0 = all).
        fp16_max_error_rate, int8_max_error_rate: the sensitivity budget on the held-out episodes
            (half the acceptance tolerance on the test split: 1.005 and 1.01).
        data_max: activations larger than this (in |value|) on calibration frames keep their
            producer and consumers in FP32 (ModelOpt AutoCast's default).
    """

    method: str = "minmax"
    max_feeds: int = 256
    heldout: int = 3
    heldout_steps: int = 0
    fp16_max_error_rate: float = 1.005
    int8_max_error_rate: float = 1.01
    data_max: float = 512.0


@dataclass
class Built:
    """Everything one run produced, for the CLI's output."""

    variants: list[NewVariant] = field(default_factory=list)
    tables: dict[str, str] = field(default_factory=dict)
    calibration_steps: int = 0


def _versions() -> dict[str, str]:
    import onnxruntime

    onnx = import_onnx()
    return {"eipl_trt": eipl_trt.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def _fp16_groups(model: Any) -> list[NodeGroup]:
    """Module groups; an activation-only module joins the group of the layer that feeds it; shape-only groups are dropped."""
    groups = group_nodes(model, by="module")
    prod = producers(model.graph)
    owner: dict[str, int] = {}
    merged: list[list[str]] = []
    ops: list[list[str]] = []
    names: list[str] = []
    by_name = {n.name: n for n in model.graph.node}
    for g in groups:
        if set(g.op_types) <= ACTIVATION_OPS:
            src = prod.get(by_name[g.nodes[0]].input[0])
            if src is not None and src.name in owner:
                i = owner[src.name]
                merged[i].extend(g.nodes)
                ops[i].extend(g.op_types)
                for n in g.nodes:
                    owner[n] = i
                continue
        if set(g.op_types) <= SHAPE_OPS:
            continue
        for n in g.nodes:
            owner[n] = len(merged)
        merged.append(list(g.nodes))
        ops.append(list(g.op_types))
        names.append(g.name)
    return [NodeGroup(n, tuple(m), tuple(o)) for n, m, o in zip(names, merged, ops)]


def _fp32_nodes(model: Any, fp16_compute: set[str]) -> set[str]:
    """Nodes that stay FP32 when ``fp16_compute`` are the FP16 compute nodes; shape ops follow their input."""
    prod = producers(model.graph)
    half: set[str] = set()
    for node in model.graph.node:
        if node.op_type in SHAPE_OPS:
            src = prod.get(node.input[0]) if node.input else None
            if src is not None and src.name in half:
                half.add(node.name)
        elif node.name in fp16_compute:
            half.add(node.name)
    return {n.name for n in model.graph.node if n.name not in half}


def _range_fp32(model: Any, feeds: Sequence[dict[str, np.ndarray]], data_max: float) -> tuple[set[str], dict[str, float]]:
    """Nodes that stay FP32 because of what they see on calibration data.

    * a node whose input or output exceeds ``data_max`` in magnitude (its producer and consumers);
    * a LayerNormalization whose input's sum of squares (its variance accumulator, over the whole
      feature map for CNNRNNLN) exceeds FP16's largest value: ONNX Runtime's CPU kernel
      accumulates in FP32 whatever the input type, but TensorRT may not, so the CPU preview could
      not show that overflow.

    Returns:
        The node names and, per offending tensor, the value that put it over (for the recipe).
    """
    floats = float_tensors(model)
    inits = {t.name for t in model.graph.initializer}
    activations = [o for n in model.graph.node if n.op_type != "Constant" for o in n.output
                   if o in floats and o not in inits]
    stats = tensor_stats(model, feeds, activations)
    big = {t: v[0] for t, v in stats.items() if not v[0] <= data_max}
    nodes = {n.name for n in model.graph.node if n.op_type != "Constant" and set(big) & (set(n.output) | set(n.input))}
    for node in model.graph.node:
        if node.op_type == "LayerNormalization" and not stats[node.input[0]][1] <= FP16_MAX:
            nodes.add(node.name)
            big[f"{node.input[0]} (sum of squares)"] = stats[node.input[0]][1]
    return nodes, big


def _make_fp16(spec: ModelSpec, model: Any, feeds: list[dict[str, np.ndarray]], scorer: Scorer, options: Options,
               out: TextIO | None) -> tuple[NewVariant, str]:
    forced, big = _range_fp32(model, feeds[:: max(1, len(feeds) // 64)], options.data_max)
    groups = _fp16_groups(model)
    candidates = [g for g in groups if not set(g.nodes) & forced]
    held_by_range = [g for g in groups if set(g.nodes) & forced]

    def build(chosen: Sequence[NodeGroup]) -> bytes:
        compute = {n for g in chosen for n in g.nodes}
        return convert_fp16(model, _fp32_nodes(model, compute)).SerializeToString()

    rows, selection = _sensitivity_pass(candidates, build, scorer, options.fp16_max_error_rate, "fp16", out)
    if not selection.chosen:
        raise ModelError("no part of the model can run in FP16 within the accuracy budget on the held-out episodes; "
                         "not writing an FP16 variant")
    fp32_nodes = _fp32_nodes(model, {n for g in selection.chosen for n in g.nodes})
    final = convert_fp16(model, fp32_nodes)
    table = format_table(rows, selection, scorer, "FP16 sensitivity (each group alone in FP16)", "fp16")
    if held_by_range:
        table += ("\n\nKept FP32 by range on calibration frames (|activation| > %g, or a LayerNorm whose variance "
                  "sum exceeds FP16's 65504): %s" % (options.data_max, ", ".join(short_name(g.name) for g in held_by_range)))
    recipe = {
        **_versions(),
        "tool": "eipl_trt.precision.fp16 (own converter: FP16 initializers, Casts at region boundaries, FP32 I/O)",
        "method": "range check + per-module sensitivity pass",
        "data_max": options.data_max,
        "kept_fp32_by_range": sorted(short_name(g.name) for g in held_by_range),
        "kept_fp32_by_sensitivity": sorted(short_name(g.name) for g in selection.excluded),
        "fp16_groups": [short_name(g.name) for g in selection.chosen],
        "fp32_nodes": sorted(fp32_nodes),
        "ranges_over_data_max": {k: round(v, 3) for k, v in big.items()},
        "budget_error_rate": options.fp16_max_error_rate,
        "heldout": selection.score.as_dict() if selection.score else None,
    }
    return _finish(spec, "fp16", final, recipe, scorer), table


def _make_int8(spec: ModelSpec, source: Path, feeds: list[dict[str, np.ndarray]], scorer: Scorer, options: Options,
               workdir: Path, out: TextIO | None) -> tuple[NewVariant, str]:
    quantizer = Int8Quantizer(source, feeds, workdir, options.method)
    groups = [g for g in group_nodes(quantizer.model, by="node", op_types=CANDIDATE_OPS) if g.nodes[0] in quantizer.candidates]

    def build(chosen: Sequence[NodeGroup]) -> bytes:
        return quantizer.quantize([n for g in chosen for n in g.nodes]).SerializeToString()

    rows, selection = _sensitivity_pass(groups, build, scorer, options.int8_max_error_rate, "int8", out)
    if not selection.chosen:
        raise ModelError("no layer can be quantized to INT8 within the accuracy budget on the held-out episodes; "
                         "not writing an INT8 variant (try --method entropy or more calibration data)")
    final = quantizer.quantize([n for g in selection.chosen for n in g.nodes])
    problems = int8_problems(final)
    if problems:
        raise ModelError("the INT8 graph is not symmetric per-channel Q/DQ: " + "; ".join(problems[:5]))
    table = format_table(rows, selection, scorer, "INT8 sensitivity (each layer alone in INT8)", "int8")
    recipe = {
        **_versions(),
        "tool": "eipl_trt.precision.int8 (ONNX Runtime calibrator for ranges; own Q/DQ insertion: int8 activations "
                "and weights, zero points 0, per-channel weights, float bias, a dedicated Q/DQ pair per layer)",
        "method": f"{options.method} calibration + per-layer sensitivity pass",
        "quantized_nodes": [n for g in selection.chosen for n in g.nodes],
        "excluded_nodes": [n for g in selection.excluded for n in g.nodes],
        "kept_fp32_for_tensorrt": dict(quantizer.unsupported),
        "budget_error_rate": options.int8_max_error_rate,
        "heldout": selection.score.as_dict() if selection.score else None,
    }
    return _finish(spec, "int8", final, recipe, scorer), table


def _sensitivity_pass(groups: Sequence[NodeGroup], build: Any, scorer: Scorer, budget: float, label: str,
                      out: TextIO | None) -> tuple[Any, Any]:
    """Score each group alone, then select the largest set within ``budget``; progress on ``out``."""
    bar = Progress(len(groups) + 4, f"{label} sensitivity", "trial", stream=out, enabled=out is not None)
    try:
        rows = measure(groups, build, scorer, bar.update)
        return rows, select(rows, build, scorer, budget, bar.update)
    finally:
        bar.close()


def _finish(spec: ModelSpec, precision: str, model: Any, recipe: dict[str, Any], scorer: Scorer) -> NewVariant:
    data = model.SerializeToString()
    StepModel(spec, data)  # loads in ONNX Runtime, or ModelError
    opset = default_opset(model)
    return NewVariant(precision, data, opset, min_tensorrt(model), recipe)


def build_variants(
    spec: ModelSpec,
    episodes: Sequence[EpisodeTensors],
    precisions: Sequence[str],
    options: Options = Options(),
    out: TextIO | None = None,
    calibration_source: str = "",
) -> Built:
    """Calibrate on ``episodes`` and build the requested variants (nothing is written to the model directory).

    Args:
        spec: the model (its fp32 variant is the source).
        episodes: preprocessed episodes; the last ``options.heldout`` score the sensitivity pass.
        precisions: any of ``fp16``, ``int8``.
        out: where progress goes (e.g. ``sys.stdout``; ``None``: silent).
        calibration_source: a description of the data for the recipe (path, split).

    Raises:
        InputError: too few episodes, an unknown precision.
        ModelError: no layer fits the budget, or a built graph fails its checks.
    """
    unknown = sorted(set(precisions) - {"fp16", "int8"})
    if unknown or not precisions:
        raise InputError(f"precisions must be among fp16, int8; got {list(precisions)}")
    episodes = [e for e in episodes if len(e) >= 2]
    if len(episodes) < 2:
        raise InputError(f"need at least 2 episodes of 2+ steps (calibration and held-out); got {len(episodes)}")
    n_held = min(options.heldout, len(episodes) - 1)
    calib, held = episodes[:-n_held], episodes[-n_held:]
    if options.heldout_steps:
        held = [EpisodeTensors(e.images[: options.heldout_steps], e.joints[: options.heldout_steps],
                               e.measured[: options.heldout_steps]) for e in held]
    source = spec.verify_variant("fp32")
    onnx = import_onnx()
    model = onnx.load(str(source))

    total = min(options.max_feeds, sum(len(e) for e in calib))
    bar = Progress(total, "calibration rollouts (fp32, closed loop)", "step", stream=out, enabled=out is not None)
    feeds = record_calibration_feeds(spec, calib, max_feeds=options.max_feeds, progress=bar.update)
    bar.close()
    bar = Progress(len(held), "fp32 reference on held-out episodes", "episode", stream=out, enabled=out is not None)
    scorer = Scorer(spec, held, source.read_bytes(), progress=None)
    bar.update(len(held))
    bar.close()
    calibration = {"source": calibration_source, "steps": len(feeds), "episodes": len(calib),
                   "sha256": feeds_sha256(feeds), "heldout_episodes": len(held),
                   "heldout_steps": int(sum(len(e) for e in held)), "heldout_fp32_mse": scorer.reference_mse,
                   "heldout_fp32_image_mse": scorer.reference_image_mse}
    built = Built(calibration_steps=len(feeds))
    if "fp16" in precisions:
        variant, table = _make_fp16(spec, model, feeds, scorer, options, out)
        variant.recipe["calibration"] = calibration  # type: ignore[index]
        built.variants.append(variant)
        built.tables["fp16"] = table
    if "int8" in precisions:
        with tempfile.TemporaryDirectory(prefix="eipl_trt-int8-") as work:
            variant, table = _make_int8(spec, source, feeds, scorer, options, Path(work), out)
        variant.recipe["calibration"] = calibration  # type: ignore[index]
        built.variants.append(variant)
        built.tables["int8"] = table
    return built
