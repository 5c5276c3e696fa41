"""ONNX graph helpers shared by the FP16 converter, the INT8 quantizer and the sensitivity pass.

Everything here works on :class:`onnx.ModelProto` objects with numpy, nothing else: node groups
(the unit the sensitivity pass switches), float tensor types, observed activation ranges, and the
oldest TensorRT whose ONNX parser reads a file.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from eipl_trt.errors import BackendUnavailableError

__all__ = [
    "NodeGroup",
    "TRT86_MAX_OPSET",
    "consumers",
    "default_opset",
    "float_tensors",
    "group_nodes",
    "import_onnx",
    "min_tensorrt",
    "producers",
    "tensor_max_abs",
    "tensor_stats",
]

#: The newest ONNX opset TensorRT 8.6's parser reads.
TRT86_MAX_OPSET = 17
#: Ops that only move or reshape data: they follow the precision of their neighbours.
SHAPE_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Split", "Identity", "Transpose"})


def import_onnx() -> Any:
    """The ``onnx`` module, or a clear error saying how to install it."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - onnx is in the [models] extra and the test venv
        raise BackendUnavailableError("making precision variants needs the onnx package: `pip install onnx onnxruntime`") from exc
    return onnx


@dataclass(frozen=True)
class NodeGroup:
    """A set of nodes the sensitivity pass switches as one unit (one layer, or one module).

    Attributes:
        name: a readable name (the module path, e.g. ``/model/pos_encoder/pos_encoder.6``).
        nodes: ONNX node names in the group.
        op_types: their op types, for the table.
    """

    name: str
    nodes: tuple[str, ...]
    op_types: tuple[str, ...]


def default_opset(model: Any) -> int:
    """The default-domain (``ai.onnx``) opset of a model."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ValueError("the model imports no default-domain opset")


def min_tensorrt(model: Any) -> str:
    """The oldest TensorRT that parses ``model``: ``"8.6"`` for opset <= 17, else ``"10.0"``."""
    return "8.6" if default_opset(model) <= TRT86_MAX_OPSET else "10.0"


def producers(graph: Any) -> dict[str, Any]:
    """Tensor name -> the node that produces it."""
    return {out: node for node in graph.node for out in node.output if out}


def consumers(graph: Any) -> dict[str, list[Any]]:
    """Tensor name -> the nodes that read it (in graph order)."""
    table: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            if name:
                table[name].append(node)
    return table


def float_tensors(model: Any) -> set[str]:
    """Names of every float32 tensor in the graph: inputs, initializers, Constant outputs, activations.

    Uses ONNX shape inference for the intermediate tensors.
    """
    onnx = import_onnx()
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    graph = inferred.graph
    float_type = onnx.TensorProto.FLOAT
    names = {t.name for t in graph.initializer if t.data_type == float_type}
    for info in list(graph.input) + list(graph.output) + list(graph.value_info):
        if info.type.tensor_type.elem_type == float_type:
            names.add(info.name)
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == float_type:
                    names.add(node.output[0])
    return names


def _module_of(node: Any) -> str:
    """``/model/rec/Gemm_1`` -> ``/model/rec``; a name without a path is its own module."""
    name = node.name or node.output[0]
    return name.rsplit("/", 1)[0] if "/" in name.strip("/") else f"{node.op_type}:{name}"


def group_nodes(model: Any, *, by: str = "module", op_types: Iterable[str] | None = None) -> list[NodeGroup]:
    """Split the graph's compute nodes into groups, in graph order.

    Args:
        model: the FP32 model.
        by: ``"module"`` (one group per exported PyTorch module, e.g. one conv, one LayerNorm, the
            spatial softmax, the LSTM cell) or ``"node"`` (one group per node).
        op_types: only nodes of these types (default: every node except ``Constant``).
    """
    wanted = set(op_types) if op_types is not None else None
    order: list[str] = []
    members: dict[str, list[Any]] = defaultdict(list)
    for node in model.graph.node:
        if node.op_type == "Constant" or (wanted is not None and node.op_type not in wanted):
            continue
        key = node.name if by == "node" else _module_of(node)
        if key not in members:
            order.append(key)
        members[key].append(node)
    return [NodeGroup(key, tuple(n.name for n in members[key]), tuple(n.op_type for n in members[key])) for key in order]


def short_name(name: str) -> str:
    """A compact label for tables: ``/model/pos_encoder/pos_encoder.4/Conv`` -> ``pos_encoder.4/Conv``."""
    parts = [p for p in re.split(r"/+", name) if p and p != "model"]
    if len(parts) >= 2 and parts[1].startswith(parts[0] + "."):
        parts = parts[1:]
    return "/".join(parts) or name


def tensor_max_abs(model: Any, feeds: Sequence[Mapping[str, np.ndarray]], tensors: Iterable[str]) -> dict[str, float]:
    """Largest |value| of each named intermediate tensor over the calibration feeds (FP32 run in ONNX Runtime).

    Args:
        model: an FP32 model.
        feeds: input dicts (as recorded by :func:`eipl_trt.precision.calibration.record_calibration_feeds`).
        tensors: tensor names to observe (graph outputs and activations).
    """
    return {name: v[0] for name, v in tensor_stats(model, feeds, tensors).items()}


def tensor_stats(model: Any, feeds: Sequence[Mapping[str, np.ndarray]],
                 tensors: Iterable[str]) -> dict[str, tuple[float, float]]:
    """Per named tensor, over the calibration feeds: (largest |value|, largest sum of squares of one sample).

    The sum of squares is what a normalization over the whole tensor accumulates for its variance.
    """
    onnx = import_onnx()
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    wanted = [t for t in dict.fromkeys(tensors)]
    for name in wanted:
        if name not in have:
            probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    peak = {name: 0.0 for name in wanted}
    energy = {name: 0.0 for name in wanted}
    for feed in feeds:
        for name, value in zip(wanted, session.run(wanted, dict(feed))):
            if value.size and np.issubdtype(value.dtype, np.floating):
                peak[name] = max(peak[name], float(np.max(np.abs(value))))
                energy[name] = max(energy[name], float(np.sum(np.square(value, dtype=np.float64))))
    return {name: (peak[name], energy[name]) for name in wanted}
