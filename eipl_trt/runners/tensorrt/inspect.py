"""Per-layer view of a built engine: TensorRT's engine inspector table and an ``IProfiler`` over N steps.

The table shows, per layer: name, type, precision of its inputs/outputs, tactic, and whether it
is a reformat (precision/layout conversion) layer. This is where a user sees, e.g., LeakyReLU as
a separate pointwise kernel or LayerNorm falling back to float around INT8 convolutions.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from eipl_trt.runners.tensorrt.runner import TrtRunner

__all__ = ["layer_table", "profile_layers", "to_markdown"]

_PRECISION = re.compile(r"\b(FP32|FP16|Half|Float|INT8|Int8|BF16|FP8|INT32|Int32|Bool)\b", re.IGNORECASE)


def _precision(tensors: Any) -> str:
    found = []
    for t in tensors or []:
        text = t.get("Format/Datatype", "") if isinstance(t, dict) else str(t)
        m = _PRECISION.search(text)
        if m:
            p = m.group(1).upper().replace("HALF", "FP16").replace("FLOAT", "FP32")
            if p not in found:
                found.append(p)
    return "/".join(found) or "?"


def layer_table(runner: TrtRunner) -> list[dict[str, str]]:
    """One row per engine layer: ``name``, ``type``, ``in``/``out`` precision, ``tactic``, ``reformat``."""
    import tensorrt as trt

    inspector = runner.engine.create_engine_inspector()
    inspector.execution_context = runner.context
    info = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    rows = []
    for layer in info.get("Layers", []):
        if isinstance(layer, str):  # built without DETAILED verbosity: names only
            rows.append({"name": layer, "type": "?", "in": "?", "out": "?", "tactic": "?", "reformat": "?"})
            continue
        name = str(layer.get("Name", "?"))
        kind = str(layer.get("LayerType", "?"))
        rows.append({
            "name": name, "type": kind, "in": _precision(layer.get("Inputs")), "out": _precision(layer.get("Outputs")),
            "tactic": str(layer.get("TacticName", layer.get("TacticValue", "?"))),
            "reformat": "yes" if "reformat" in (kind + name).lower() else "",
        })
    return rows


def profile_layers(runner: TrtRunner, steps: int) -> dict[str, float]:
    """Median time (ms) per layer over ``steps`` steps with zero inputs (the runner must be opened with
    CUDA graphs off: TensorRT reports layer times only for plain enqueues)."""
    import tensorrt as trt

    times: dict[str, list[float]] = {}

    class _Profiler(trt.IProfiler):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            times.setdefault(layer_name, []).append(float(ms))

    profiler = _Profiler()
    runner.context.profiler = profiler
    shapes = runner.spec.input_shapes()
    image, joint = np.zeros(shapes["image"], np.float32), np.zeros(shapes["joint"], np.float32)
    try:
        for _ in range(steps):
            runner.infer(image, joint)
    finally:
        try:
            runner.context.profiler = None
        except TypeError:  # some bindings refuse None; the runner is closed after profiling anyway
            pass
        runner.reset_state()
    return {name: float(np.median(v)) for name, v in times.items()}


def to_markdown(rows: list[dict[str, str]], profile: dict[str, float] | None = None) -> str:
    """The table as Markdown (with a ``ms`` column when ``profile`` is given)."""
    cols = ["name", "type", "in", "out", "tactic", "reformat"] + (["ms"] if profile is not None else [])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = [row[c].replace("|", "\\|") for c in cols if c != "ms"]
        if profile is not None:
            cells.append(f"{profile[row['name']]:.4f}" if row["name"] in profile else "")
        lines.append("| " + " | ".join(cells) + " |")
    if profile:
        lines.append(f"\nTotal of per-layer medians: {sum(profile.values()):.4f} ms")
    return "\n".join(lines) + "\n"
