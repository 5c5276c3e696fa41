"""A numpy reference executor for the exported EIPL graphs, with per-node fake quantization.

FP32 mode (``QuantConfig()``, float32 arithmetic) reproduces ONNX Runtime to ~1e-6 per step
(``test/test_quantlab.py`` checks 50 steps with the state fed back). A :class:`QuantConfig`
makes it emulate fixed-point hardware in float64 (exact for the integer values it holds):

* **weights** of Conv/ConvTranspose/Gemm/MatMul: signed ``weight_bits`` codes, scale per tensor
  (``float``), per output channel (``channel``) or a power of two (``pow2``);
* **activations**: every tensor a compute node produces (and the graph inputs) as signed
  ``act_bits`` codes with a static per-tensor scale from calibration (:func:`calibrate`);
  shape-only nodes (Reshape, Split, Concat, ...) pass codes through unchanged;
* **accumulator**: where a layer's input and weights are both quantized, its sum is an exact
  integer in units of ``s_x * s_w``; it is saturated to ``acc_bits`` (the final sum is clipped,
  as a wide adder tree followed by a saturating register would; ``None`` = wide enough never to
  saturate); the bias is quantized to the same units;
* ``nodes``: restrict all of the above to these compute nodes (their input activation, weights,
  accumulator and output), everything else FP32: the per-layer sensitivity pass.

Constants that are not layer weights (SARNN's coordinate grid, temperatures) stay float.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from eipl_trt.errors import ModelError
from eipl_trt.runners.integer.ops import OPS
from eipl_trt.runners.integer.rounding import ROUNDING_MODES, SCALE_KINDS, choose_scale, per_channel_max, quantize, saturate

__all__ = ["Node", "Graph", "QuantConfig", "Executor", "calibrate", "COMPUTE_OPS", "SHAPE_OPS"]

#: Layers with weights: their second input is quantized as weights, their sum accumulates.
COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
#: Nodes that move values without computing: no requantization of their outputs.
SHAPE_OPS = ("Reshape", "Flatten", "Split", "Concat", "Unsqueeze", "Identity", "Constant")


@dataclass(frozen=True)
class Node:
    """One ONNX node: ``op``, ``name``, input/output tensor names ('' = omitted), attributes."""

    op: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]


class Graph:
    """An ONNX model read into plain Python: nodes in topological order and numpy initializers.

    Raises:
        ModelError: an unreadable file or an operator the lab does not implement.
    """

    def __init__(self, model: str | Path | bytes | Any):
        try:
            import onnx
            from onnx import helper, numpy_helper
        except ImportError as exc:
            raise ModelError("the quantization lab reads ONNX graphs with the onnx package: "
                             "pip install onnx (it is in requirements/test.txt)") from exc

        try:
            proto = model if hasattr(model, "graph") else (
                onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model)))
        except Exception as exc:  # onnx's DecodeError and OSError
            raise ModelError(f"cannot read the ONNX model: {exc}") from exc
        g = proto.graph
        self.initializers: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        init = set(self.initializers)
        self.inputs = [i.name for i in g.input if i.name not in init]
        self.outputs = [o.name for o in g.output]
        self.nodes: list[Node] = []
        for n in g.node:
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            if n.op_type == "Constant":
                attrs = {"value": numpy_helper.to_array(attrs["value"])}
            elif n.op_type not in OPS:
                raise ModelError(f"node {n.name}: operator {n.op_type} is not implemented by the quantization lab")
            self.nodes.append(Node(n.op_type, n.name, tuple(n.input), tuple(n.output), attrs))

    def node(self, name: str) -> Node:
        """The node called ``name`` (:class:`ModelError` if none)."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise ModelError(f"the graph has no node {name!r}")

    def compute_nodes(self) -> list[str]:
        """Names of the layers with weights, in graph order."""
        return [n.name for n in self.nodes if n.op in COMPUTE_OPS and n.inputs[1] in self.initializers]

    def weight_axis(self, node: Node) -> int:
        """The output-channel axis of ``node``'s weights (per-channel scales run along it)."""
        if node.op == "Conv":
            return 0
        if node.op == "ConvTranspose":
            return 1
        if node.op == "Gemm":
            return 0 if node.attrs.get("transB", 0) else 1
        return -1  # MatMul: B is (K, N)


@dataclass(frozen=True)
class QuantConfig:
    """What to quantize and how (see the module docstring). ``None`` bits = leave float."""

    weight_bits: int | None = None
    act_bits: int | None = None
    scale: str = "float"
    rounding: str = "nearest"
    acc_bits: int | None = None
    seed: int = 0
    nodes: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.scale not in SCALE_KINDS:
            raise ModelError(f"unknown scale kind {self.scale!r}; choose one of {', '.join(SCALE_KINDS)}")
        if self.rounding not in ROUNDING_MODES:
            raise ModelError(f"unknown rounding {self.rounding!r}; choose one of {', '.join(ROUNDING_MODES)}")

    @property
    def is_float(self) -> bool:
        """True when nothing is quantized (the FP32 reference)."""
        return self.weight_bits is None and self.act_bits is None


def _channel_shape(axis: int, ndim: int, n: int) -> tuple[int, ...]:
    shape = [1] * ndim
    shape[axis % ndim] = n
    return tuple(shape)


class Executor:
    """Runs a :class:`Graph` step by step, FP32 or fake-quantized.

    Args:
        graph: the model.
        config: quantization (default: FP32).
        ranges: calibrated max |x| per tensor name (:func:`calibrate`); needed when activations are quantized.
    """

    def __init__(self, graph: Graph, config: QuantConfig = QuantConfig(), ranges: Mapping[str, float] | None = None):
        self.graph = graph
        self.config = config
        self.dtype = np.float32 if config.is_float else np.float64
        self.rng = np.random.default_rng(config.seed)
        self.ranges = dict(ranges or {})
        if config.act_bits is not None and not self.ranges:
            raise ModelError("quantized activations need calibrated ranges: run calibrate() first")
        self.selected = set(graph.compute_nodes()) if config.nodes is None else set(config.nodes)
        unknown = self.selected - set(graph.compute_nodes())
        if unknown:
            raise ModelError(f"not layers with weights: {', '.join(sorted(unknown))}; choose from {graph.compute_nodes()}")
        self.weights: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}  # node -> (fake-quant weight, scale)
        self.consts = {k: (v.astype(self.dtype) if v.dtype.kind == "f" else v) for k, v in graph.initializers.items()}
        for name in self.selected:
            self._quantize_weight(graph.node(name))

    # ------------------------------------------------------------------ quantizers
    def _quantize_weight(self, node: Node) -> None:
        w = self.graph.initializers[node.inputs[1]].astype(np.float64)
        bits = self.config.weight_bits
        if bits is None:
            self.weights[node.name] = (w.astype(self.dtype), None)
            return
        axis = self.graph.weight_axis(node) % w.ndim
        if self.config.scale == "float":
            scale = choose_scale(per_channel_max(w, None), bits, "float").reshape([1] * w.ndim)
        else:
            scale = choose_scale(per_channel_max(w, axis), bits, self.config.scale).reshape(
                _channel_shape(axis, w.ndim, w.shape[axis]))
        # weights always round to nearest: they are converted once, offline
        self.weights[node.name] = (quantize(w, scale, bits, "nearest") * scale, scale)

    def act_scale(self, tensor: str) -> float:
        """The static scale of an activation tensor (per tensor; ``pow2`` rounds it up to a power of two)."""
        if tensor not in self.ranges:
            raise ModelError(f"no calibrated range for tensor {tensor!r}; calibrate on data that reaches it")
        kind = "pow2" if self.config.scale == "pow2" else "float"
        return float(choose_scale(self.ranges[tensor], int(self.config.act_bits or 8), kind))

    def _fq_act(self, x: np.ndarray, tensor: str) -> np.ndarray:
        s = self.act_scale(tensor)
        return quantize(x, s, int(self.config.act_bits), self.config.rounding, self.rng) * s  # type: ignore[arg-type]

    # ------------------------------------------------------------------ stepping
    def run(self, feeds: Mapping[str, np.ndarray], record: dict[str, float] | None = None,
            shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
        """One step. Returns every graph output by name.

        Args:
            feeds: graph input name -> array.
            record: if given, updated in place with the max |x| of every float tensor (calibration).
            shapes: if given, filled with every tensor's shape.
        """
        cfg = self.config
        full = cfg.act_bits is not None and cfg.nodes is None
        env: dict[str, Any] = {}
        for name in self.graph.inputs:
            if name not in feeds:
                raise ModelError(f"missing input {name!r}; the graph needs {self.graph.inputs}")
            x = np.asarray(feeds[name], self.dtype)
            env[name] = self._fq_act(x, name) if full else x
        for node in self.graph.nodes:
            if node.op == "Constant":
                env[node.outputs[0]] = node.attrs["value"]
                continue
            args = [None if i == "" else (env[i] if i in env else self.consts[i]) for i in node.inputs]
            attrs = {k: v for k, v in node.attrs.items()}
            if node.name in self.weights:
                out = self._compute(node, args, attrs, full)
            else:
                out = OPS[node.op](*args, **attrs)
            outs = out if isinstance(out, list) else [out]
            for tname, value in zip(node.outputs, outs):
                if full and node.op not in SHAPE_OPS and np.asarray(value).dtype.kind == "f":
                    value = self._fq_act(value, tname)
                elif not full and cfg.act_bits is not None and node.name in self.selected:
                    value = self._fq_act(value, tname)
                env[tname] = value
                if record is not None and np.asarray(value).dtype.kind == "f":
                    m = float(np.abs(value).max()) if np.size(value) else 0.0
                    record[tname] = max(record.get(tname, 0.0), m)
        if shapes is not None:
            shapes.update({k: tuple(np.shape(v)) for k, v in env.items()})
        if record is not None:
            for name in self.graph.inputs:
                record[name] = max(record.get(name, 0.0), float(np.abs(env[name]).max()))
        return {name: np.asarray(env[name]) for name in self.graph.outputs}

    def _compute(self, node: Node, args: list[Any], attrs: dict[str, Any], full: bool) -> np.ndarray:
        cfg = self.config
        w, w_scale = self.weights[node.name]
        x = args[0]
        if cfg.act_bits is not None and not full:
            x = self._fq_act(x, node.inputs[0])
        bias = args[2] if len(args) > 2 else None
        both = cfg.act_bits is not None and w_scale is not None
        if not both:
            return OPS[node.op](x, w, bias, **attrs) if node.op != "MatMul" else OPS["MatMul"](x, w)
        # integer accumulator emulation: sum in units of s_x * s_w (exact integers in float64)
        s_x = self.act_scale(node.inputs[0])
        y = OPS[node.op](x, w, None, **attrs) if node.op != "MatMul" else OPS["MatMul"](x, w)
        unit = s_x * self._unit_shape(node, w_scale, y.ndim)
        acc = np.floor(y / unit + 0.5)  # removes float64 noise; the true sum is an integer
        acc_bits = cfg.acc_bits
        if acc_bits is not None:
            acc = saturate(acc, acc_bits)
        if bias is not None:
            b = np.floor(np.asarray(bias, np.float64).reshape(self._bias_shape(node, y.ndim)) / unit + 0.5)
            acc = acc + b if acc_bits is None else saturate(acc + saturate(b, acc_bits), acc_bits)
        return acc * unit

    def _unit_shape(self, node: Node, w_scale: np.ndarray, ndim: int) -> np.ndarray:
        s = np.asarray(w_scale, np.float64).reshape(-1)
        if s.size == 1:
            return s.reshape(())
        return s.reshape(self._bias_shape(node, ndim))

    @staticmethod
    def _bias_shape(node: Node, ndim: int) -> tuple[int, ...]:
        return (1, -1, 1, 1) if node.op in ("Conv", "ConvTranspose") else (1,) * (ndim - 1) + (-1,)


def calibrate(graph: Graph, feeds: Iterable[Mapping[str, np.ndarray]]) -> dict[str, float]:
    """Max |x| of every tensor over FP32 steps ``feeds`` (each a full input dict, state included)."""
    ex = Executor(graph)
    ranges: dict[str, float] = {}
    for feed in feeds:
        ex.run(feed, record=ranges)
    if not ranges:
        raise ModelError("calibration saw no step: give it at least one feed")
    return ranges
