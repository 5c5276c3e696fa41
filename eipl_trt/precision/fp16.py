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
    from onnx import TensorProto, helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    floats = float_tensors(model)
    keep = set(keep_fp32)
    nodes = list(graph.node)  # protobuf hands out fresh wrappers on each access: index, don't id()
    is16 = [n.op_type != "Constant" and n.name not in keep for n in nodes]
    graph_outputs = {o.name for o in graph.output}
    initializers = {t.name: t for t in graph.initializer}

    # Home precision of every float activation: FP16 when an FP16 node produces it. A graph output
    # produced in FP16 is renamed, and its original (FP32) name is produced by a Cast.
    home16: dict[str, str] = {}
    for node, half in zip(nodes, is16):
        if not half:
            continue
        for i, name in enumerate(node.output):
            if name in floats:
                renamed = name + FP16_SUFFIX if name in graph_outputs else name
                node.output[i] = renamed
                home16[name] = renamed

    new_inits: list[Any] = []
    casts: dict[tuple[str, int], tuple[str, Any]] = {}

    def version(name: str, want16: bool) -> str:
        """The name under which ``name`` is available in the wanted precision (creating it once)."""
        if (name in home16) == want16:
            return home16.get(name, name)
        key = (name, int(want16))
        if key in casts:
            return casts[key][0]
        if want16 and name in initializers:
            array = numpy_helper.to_array(initializers[name])
            if array.size and float(np.max(np.abs(array))) > FP16_MAX:
                raise ValueError(f"initializer {name!r} exceeds FP16's range; keep its consumers in FP32")
            copy = numpy_helper.from_array(array.astype(np.float16), name + FP16_SUFFIX)
            new_inits.append(copy)
            casts[key] = (copy.name, None)
            return copy.name
        source = home16.get(name, name)
        target = (name + FP16_SUFFIX) if want16 else (name if name in graph_outputs else name + FP32_SUFFIX)
        cast = helper.make_node("Cast", [source], [target], name=f"{target}/Cast",
                                to=TensorProto.FLOAT16 if want16 else TensorProto.FLOAT)
        casts[key] = (target, cast)
        return target

    rewritten: list[Any] = []
    for node, want16 in zip(nodes, is16):
        for i, name in enumerate(node.input):
            if name and name in floats:
                node.input[i] = version(name, want16)
        rewritten.append(node)
    for name in graph_outputs:
        if name in home16:
            version(name, False)

    # Place each Cast right after the node that produces its source.
    ordered: list[Any] = []
    pending = [cast for _, cast in casts.values() if cast is not None]
    by_source: dict[str, list[Any]] = {}
    for cast in pending:
        by_source.setdefault(cast.input[0], []).append(cast)
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    for source in list(by_source):
        if source in available:
            ordered.extend(by_source.pop(source))
    for node in rewritten:
        ordered.append(node)
        for name in node.output:
            ordered.extend(by_source.pop(name, []))
    assert not by_source, f"casts without a source: {sorted(by_source)}"
    del graph.node[:]
    graph.node.extend(ordered)

    graph.initializer.extend(new_inits)
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.value_info[:]
    onnx.checker.check_model(out)
    return out
