"""INT8 variant: symmetric Q/DQ that TensorRT (8.6, 10, 11) and ONNX Runtime both run.

Ranges come from ONNX Runtime's calibrators (``minmax``, ``entropy``, ``percentile``; symmetric),
run once over every candidate layer's input. The Q/DQ nodes are inserted here, per *node*, in the
form TensorRT's explicit quantization reads:

* the layer's input activation: ``QuantizeLinear -> DequantizeLinear`` with an int8 zero point 0
  and one scale (``max|x| / 127``), on a dedicated pair, so other readers of the same tensor keep
  reading float (ONNX Runtime's ``quantize_static`` rewires *every* reader of a quantized tensor,
  including a graph output: quantizing the joint head's input would also quantize the recurrent
  state ``o.state_h`` the model feeds back, and "one layer at a time" would not be one layer);
* the weight: an int8 initializer (``round(w / scale)``, clipped to ±127) and a per-channel
  ``DequantizeLinear`` (Conv: axis 0, ConvTranspose: axis 1, Gemm: its output axis, MatMul: 1);
* the bias stays float (TensorRT has no int32 bias Q/DQ); the layer's output stays float (the next
  quantized layer's input pair is the only boundary). The model's opset is kept (>= 13 for
  per-channel DequantizeLinear).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from eipl_trt.errors import BackendUnavailableError, InputError
from eipl_trt.precision.graph import default_opset, import_onnx

__all__ = ["CANDIDATE_OPS", "METHODS", "Int8Quantizer", "int8_problems", "tensorrt_unsupported_convs"]

log = logging.getLogger(__name__)

#: Op types INT8 may quantize (input activation + weights); everything else stays float.
CANDIDATE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
METHODS = ("minmax", "entropy", "percentile")
_QMAX = 127.0


class _FeedReader:
    """ONNX Runtime ``CalibrationDataReader`` over recorded feed dicts."""

    def __init__(self, feeds: Sequence[Mapping[str, np.ndarray]]):
        self._feeds = list(feeds)
        self._iter: Iterator[Mapping[str, np.ndarray]] = iter(self._feeds)

    def get_next(self) -> Mapping[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self._feeds)


def _weight_axis(node: Any) -> int:
    """The output-channel axis of a layer's weight."""
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if node.op_type == "MatMul":
        return 1
    return 0


def tensorrt_unsupported_convs(model: Any) -> dict[str, str]:
    """Convs TensorRT has no INT8 kernels for, with the reason (they are never INT8 candidates).

    NVIDIA's rule as ModelOpt 0.47 applies it (``modelopt.onnx.quantization.graph_utils.
    find_nodes_from_convs_to_exclude``): a Conv with fewer than 16 input or output channels is
    supported in INT8 only if it is not grouped, one channel count is a multiple of 8, its kernel is
    square, and it reads a graph input or has 16+ channels on the other side.
    """
    inits = {t.name: t for t in model.graph.initializer}
    graph_inputs = {i.name for i in model.graph.input}
    out = {}
    for node in model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        oc, ic = (int(d) for d in inits[node.input[1]].dims[:2])
        attrs = {a.name: a for a in node.attribute}
        group = attrs["group"].i if "group" in attrs else 1
        kernel = list(attrs["kernel_shape"].ints) if "kernel_shape" in attrs else list(inits[node.input[1]].dims[2:])
        if oc >= 16 and ic >= 16:
            continue
        if (group == 1 and (oc % 8 == 0 or ic % 8 == 0) and (node.input[0] in graph_inputs or oc >= 16 or ic >= 16)
                and len(set(kernel)) == 1):
            continue
        out[node.name] = (f"{ic}->{oc} channels: TensorRT has no INT8 kernel for it (fewer than 16 channels, "
                          "neither a multiple of 8 with 16+ on the other side)")
    return out


class Int8Quantizer:
    """Quantizes chosen nodes of one FP32 model; activation ranges are calibrated once, up front.

    Args:
        source: the FP32 ONNX file.
        feeds: calibration inputs (:func:`~eipl_trt.precision.calibration.record_calibration_feeds`).
        workdir: unused scratch space is taken from here (kept for callers that pass one).
        method: ``minmax``, ``entropy`` or ``percentile`` (99.999th).

    Raises:
        InputError: no calibration data or an unknown method.
        BackendUnavailableError: onnxruntime's quantization tools are missing.
    """

    def __init__(self, source: Path, feeds: Sequence[Mapping[str, np.ndarray]], workdir: Path | None = None,
                 method: str = "minmax"):
        try:
            from onnxruntime.quantization import CalibrationMethod
            from onnxruntime.quantization.calibrate import create_calibrator
        except ImportError as exc:
            raise BackendUnavailableError("INT8 quantization needs onnxruntime with its quantization tools and onnx: "
                                          "`pip install onnxruntime onnx`") from exc
        methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                   "percentile": CalibrationMethod.Percentile}
        if method not in methods:
            raise InputError(f"unknown calibration method {method!r}; choose one of {', '.join(methods)}")
        if not feeds:
            raise InputError("INT8 quantization needs calibration data; none was given")
        onnx = import_onnx()
        self.method = method
        self.model = onnx.load(str(source))
        if default_opset(self.model) < 13:
            raise InputError(f"{source} has opset {default_opset(self.model)}; per-channel Q/DQ needs 13 or newer. "
                             "Re-export the model (eipl-trt export writes opset 17).")
        self.candidates = [n.name for n in self.model.graph.node if n.op_type in CANDIDATE_OPS]
        inits = {t.name for t in self.model.graph.initializer}
        self._activation = {n.name: n.input[0] for n in self.model.graph.node if n.op_type in CANDIDATE_OPS}
        self._weight = {n.name: n.input[1] for n in self.model.graph.node
                        if n.op_type in CANDIDATE_OPS and len(n.input) > 1 and n.input[1] in inits}
        #: candidates TensorRT could not build in INT8: node -> reason (kept FP32, recorded in the recipe)
        self.unsupported = tensorrt_unsupported_convs(self.model)
        self.candidates = [n for n in self.candidates if n in self._weight and self._activation[n] not in inits
                           and n not in self.unsupported]
        with tempfile.TemporaryDirectory(prefix="eipl_trt-calib-", dir=workdir) as tmp:
            calibrator = create_calibrator(
                Path(source), list(CANDIDATE_OPS), augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                calibrate_method=methods[method], extra_options={"symmetric": True, "moving_average": False},
            )
            calibrator.collect_data(_FeedReader(feeds))
            ranges = calibrator.compute_data()
        self.absmax: dict[str, float] = {}
        for name in set(self._activation.values()):
            if name in ranges:
                lo, hi = (float(np.asarray(v).ravel()[0]) for v in ranges[name].range_value)
                self.absmax[name] = max(abs(lo), abs(hi))
        log.info("calibrated INT8 ranges (%s) of %d tensors on %d samples", method, len(self.absmax), len(feeds))

    def quantize(self, nodes: Sequence[str]) -> Any:
        """A copy of the model with exactly ``nodes`` quantized (the others untouched).

        Raises:
            InputError: no node given, or a node that is not an INT8 candidate.
        """
        onnx = import_onnx()
        from onnx import TensorProto, helper, numpy_helper

        unknown = sorted(set(nodes) - set(self.candidates))
        if not nodes or unknown:
            raise InputError(f"choose INT8 nodes among the {', '.join(CANDIDATE_OPS)} layers with constant weights; "
                             f"not {unknown or list(nodes)}")
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        graph = model.graph
        inits = {t.name: t for t in graph.initializer}
        chosen = set(nodes)
        new_nodes = []
        zero = numpy_helper.from_array(np.zeros((), np.int8), "int8_zero_point")
        graph.initializer.append(zero)
        for node in graph.node:
            if node.name in chosen:
                x, w = node.input[0], node.input[1]
                scale = max(self.absmax.get(x, 0.0), 1e-12) / _QMAX
                tag = node.name.strip("/").replace("/", ".")
                graph.initializer.append(numpy_helper.from_array(np.array(scale, np.float32), f"{tag}.x_scale"))
                q = helper.make_node("QuantizeLinear", [x, f"{tag}.x_scale", zero.name], [f"{tag}.x_q"], name=f"{tag}.x/Q")
                dq = helper.make_node("DequantizeLinear", [f"{tag}.x_q", f"{tag}.x_scale", zero.name], [f"{tag}.x_dq"],
                                      name=f"{tag}.x/DQ")
                weight = numpy_helper.to_array(inits[w]).astype(np.float32)
                axis = _weight_axis(node)
                reduce = tuple(i for i in range(weight.ndim) if i != axis)
                w_scale = np.max(np.abs(weight), axis=reduce) / _QMAX
                w_scale = np.where(w_scale > 0, w_scale, 1.0).astype(np.float32)
                shape = [1] * weight.ndim
                shape[axis] = -1
                w_int = np.clip(np.round(weight / w_scale.reshape(shape)), -_QMAX, _QMAX).astype(np.int8)
                graph.initializer.extend([
                    numpy_helper.from_array(w_int, f"{tag}.w_int8"),
                    numpy_helper.from_array(w_scale, f"{tag}.w_scale"),
                    numpy_helper.from_array(np.zeros(w_scale.shape, np.int8), f"{tag}.w_zero_point"),
                ])
                wdq = helper.make_node("DequantizeLinear", [f"{tag}.w_int8", f"{tag}.w_scale", f"{tag}.w_zero_point"],
                                       [f"{tag}.w_dq"], name=f"{tag}.w/DQ", axis=axis)
                new_nodes += [q, dq, wdq]
                node.input[0] = f"{tag}.x_dq"
                node.input[1] = f"{tag}.w_dq"
            new_nodes.append(node)
        del graph.node[:]
        graph.node.extend(new_nodes)
        used = {i for n in graph.node for i in n.input}
        kept = [t for t in graph.initializer if t.name in used]
        del graph.initializer[:]
        graph.initializer.extend(kept)
        onnx.checker.check_model(model)
        del TensorProto
        return model


def int8_problems(model: Any) -> list[str]:
    """What keeps ``model`` from being a TensorRT-ready symmetric INT8 Q/DQ graph (empty = fine).

    Checks: every QuantizeLinear/DequantizeLinear zero point is int8 and 0; every DequantizeLinear
    of a weight (an initializer) is per-channel (a 1-D scale with more than one entry); no
    QLinear*/Integer ops (QOperator format) and no uint8 tensors.
    """
    import_onnx()
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    problems = []
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not qdq:
        problems.append("no QuantizeLinear/DequantizeLinear nodes")
    for node in qdq:
        if len(node.input) < 3 or node.input[2] not in inits:
            problems.append(f"{node.name}: no constant zero point")
            continue
        zp = inits[node.input[2]]
        if zp.data_type != TensorProto.INT8:
            problems.append(f"{node.name}: zero point type {TensorProto.DataType.Name(zp.data_type)}, not INT8")
        elif np.any(numpy_helper.to_array(zp) != 0):
            problems.append(f"{node.name}: non-zero zero point")
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            scale = numpy_helper.to_array(inits[node.input[1]])
            if scale.ndim != 1 or scale.size < 2:
                problems.append(f"{node.name}: weight scale is per-tensor (shape {scale.shape}), not per-channel")
    for node in graph.node:
        if node.op_type.startswith("QLinear") or node.op_type.endswith("Integer"):
            problems.append(f"{node.name}: {node.op_type} is QOperator format, not Q/DQ")
    for t in graph.initializer:
        if t.data_type == TensorProto.UINT8:
            problems.append(f"initializer {t.name} is uint8")
    return problems
