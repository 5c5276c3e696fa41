"""FP16 variant: FP16 compute with FP32 graph inputs/outputs and FP32 islands where needed.

A small converter of our own (onnx + numpy) instead of ModelOpt AutoCast or onnxconverter-common:

* it keeps the default opset (17 for our exports), so TensorRT 8.6's parser reads the file;
* the FP32 islands are chosen per node by the caller (ranges seen on real frames and the
  sensitivity pass, :mod:`eipl_trt.precision.recipes`), and the converter only does the
  mechanics: FP16 copies of initializers, one ``Cast`` per tensor and direction at region
  boundaries, graph I/O kept FP32;
* it needs nothing beyond ``onnx`` and ``numpy`` (AutoCast needs ModelOpt's 1.4 GB tool set).

Initializers used by both regions get one copy per precision. ``Constant`` nodes stay as they
are; an FP16 consumer reads them through a ``Cast`` (constant-folded by ONNX Runtime and TensorRT).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from eipl_trt.precision.graph import float_tensors, import_onnx

__all__ = ["convert_fp16", "FP16_MAX", "FP16_SUFFIX", "FP32_SUFFIX"]

FP16_SUFFIX = "/fp16"
FP32_SUFFIX = "/fp32"
#: FP16's largest finite value (65504).
FP16_MAX = float(np.finfo(np.float16).max)


def convert_fp16(model: Any, keep_fp32: Iterable[str] = ()) -> Any:
    """An FP16 copy of ``model`` in which the nodes named in ``keep_fp32`` (and ``Constant`` nodes) stay FP32.

    Args:
        model: an FP32 :class:`onnx.ModelProto` (not modified).
        keep_fp32: node names that keep computing in FP32.

    Returns:
        A new, checked model with the same graph inputs/outputs (names, FP32 types, shapes) and opset.

    Raises:
        ValueError: an FP32 initializer that an FP16 node needs holds values beyond FP16's range.
    """
    onnx = import_onnx()

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    floats = float_tensors(model)
    keep = set(keep_fp32)
    nodes = list(graph.node)  # protobuf hands out fresh wrappers on each access: index, don't id()
    is16 = [n.op_type != "Constant" and n.name not in keep for n in nodes]
    graph_outputs = {o.name for o in graph.output}
    home16 = _produce_fp16(nodes, is16, floats, graph_outputs)

    # Every node reads each float input in its own precision; the graph outputs are FP32.
    versions = _Versions(home16, {t.name: t for t in graph.initializer}, graph_outputs)
    for node, want16 in zip(nodes, is16):
        for i, name in enumerate(node.input):
            if name and name in floats:
                node.input[i] = versions.get(name, want16)
    for name in graph_outputs:
        if name in home16:
            versions.get(name, False)

    available = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    ordered = _with_casts(nodes, versions.casts(), available)
    del graph.node[:]
    graph.node.extend(ordered)
    graph.initializer.extend(versions.new_initializers)
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.value_info[:]
    onnx.checker.check_model(out)
    return out


def _produce_fp16(nodes: list[Any], is16: list[bool], floats: set[str], graph_outputs: set[str]) -> dict[str, str]:
    """The home precision of every float activation: FP16 when an FP16 node produces it.

    Returns ``{name: name in FP16}``. A graph output produced in FP16 is renamed (in ``nodes``), and its
    original (FP32) name will be produced by a Cast.
    """
    home16: dict[str, str] = {}
    for node, half in zip(nodes, is16):
        if not half:
            continue
        for i, name in enumerate(node.output):
            if name in floats:
                renamed = name + FP16_SUFFIX if name in graph_outputs else name
                node.output[i] = renamed
                home16[name] = renamed
    return home16


class _Versions:
    """Each float tensor in the precision a reader wants: FP16 copies of initializers, Casts of activations."""

    def __init__(self, home16: dict[str, str], initializers: dict[str, Any], graph_outputs: set[str]) -> None:
        self.home16, self.initializers, self.graph_outputs = home16, initializers, graph_outputs
        self.new_initializers: list[Any] = []
        self._made: dict[tuple[str, int], tuple[str, Any]] = {}

    def get(self, name: str, want16: bool) -> str:
        """The name under which ``name`` is available in the wanted precision (creating it once)."""
        from onnx import TensorProto, helper, numpy_helper

        if (name in self.home16) == want16:
            return self.home16.get(name, name)
        key = (name, int(want16))
        if key in self._made:
            return self._made[key][0]
        if want16 and name in self.initializers:
            array = numpy_helper.to_array(self.initializers[name])
            if array.size and float(np.max(np.abs(array))) > FP16_MAX:
                raise ValueError(f"initializer {name!r} exceeds FP16's range; keep its consumers in FP32")
            copy = numpy_helper.from_array(array.astype(np.float16), name + FP16_SUFFIX)
            self.new_initializers.append(copy)
            self._made[key] = (copy.name, None)
            return copy.name
        source = self.home16.get(name, name)
        target = (name + FP16_SUFFIX) if want16 else (name if name in self.graph_outputs else name + FP32_SUFFIX)
        cast = helper.make_node("Cast", [source], [target], name=f"{target}/Cast",
                                to=TensorProto.FLOAT16 if want16 else TensorProto.FLOAT)
        self._made[key] = (target, cast)
        return target

    def casts(self) -> list[Any]:
        """The Cast nodes made, in the order they were made."""
        return [cast for _, cast in self._made.values() if cast is not None]


def _with_casts(nodes: list[Any], casts: list[Any], available: set[str]) -> list[Any]:
    """``nodes`` with each Cast placed right after the node that produces its source (or first, for a
    graph input or an initializer)."""
    ordered: list[Any] = []
    by_source: dict[str, list[Any]] = {}
    for cast in casts:
        by_source.setdefault(cast.input[0], []).append(cast)
    for source in list(by_source):
        if source in available:
            ordered.extend(by_source.pop(source))
    for node in nodes:
        ordered.append(node)
        for name in node.output:
            ordered.extend(by_source.pop(name, []))
    assert not by_source, f"casts without a source: {sorted(by_source)}"
    return ordered
