"""CPU graph rewrites: exact reformulations of the layers ONNX Runtime's CPU kernels run slowly.

The exported graph is the one TensorRT builds from, so it stays as PyTorch wrote it. Before ONNX
Runtime opens it, :func:`rewrite_for_cpu` replaces two patterns that its CPU kernels handle badly
by the same arithmetic in a form they handle well (measured on SARNN, 1 thread, AVX2:
`scripts/profile_cpu_graph.py` prints the per-layer times):

- **Stride-1 transposed convolution -> convolution.** ``ConvTranspose`` (stride 1, no dilation,
  no groups) equals a ``Conv`` with the kernel flipped, its in/out channels swapped and padding
  ``k - 1 - p``. ONNX Runtime runs ``ConvTranspose`` as a GEMM plus ``col2im`` outside its blocked
  (NCHWc) convolution path; as a ``Conv`` it takes that path. SARNN's image decoder is three of them.
- **Narrow convolution -> row convolution + shifted sum.** A ``k x k`` convolution to few output
  channels (<= 8, as SARNN's attention-point heads: 32 -> 5) spends its time building the im2col
  matrix, not multiplying. It is computed as one ``1 x k`` convolution to ``k * O`` channels (every
  kernel row at once) and the sum of ``k`` row-shifted slices of it, plus the bias.

Not rewritten: strided ``ConvTranspose`` (CNNRNN's decoder). Its sub-pixel form (one ``Conv`` to
``s * s * C`` channels and a ``DepthToSpace``) was measured slower: ONNX Runtime's ``DepthToSpace``
(or ``Reshape``/``Transpose``) of the 64-channel 64 x 64 result alone costs 1.5-2.2 ms.

Both are exact up to float rounding (summation order); the ONNX Runtime runner is checked against
the plain graph over fed-back steps in ``test/test_cpu_graph.py``. Only float32 weights stored as
initializers are rewritten: quantized layers (weights behind ``DequantizeLinear``) and fp16 graphs
are left as they are.

:func:`without_outputs` prunes a graph to the outputs a step needs: while nobody subscribes to
the predicted image, the runner steps a graph without the image decoder (and, for SARNN, without
the image encoder whose features only the decoder reads).

Needs the ``onnx`` package (a dependency of eipl_trt); callers fall back to the plain graph with a
log line when it is missing.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

__all__ = ["MAX_NARROW_OUT", "MIN_NARROW_IN", "rewrite_for_cpu", "without_outputs"]

#: A convolution with at most this many output channels and at least :data:`MIN_NARROW_IN` input
#: channels is computed as a row convolution plus shifted sum (NCHWc's channel block is 8: fewer
#: outputs than that leave most of the block idle).
MAX_NARROW_OUT = 8
MIN_NARROW_IN = 8

_INT64_MAX = np.iinfo(np.int64).max


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _float_weight(graph: Any, inits: dict[str, Any], name: str) -> np.ndarray | None:
    """The 4-D float32 initializer ``name`` (not overridable by a graph input), else ``None``."""
    from onnx import TensorProto, numpy_helper

    init = inits.get(name)
    if init is None or init.data_type != TensorProto.FLOAT or len(init.dims) != 4:
        return None
    if any(i.name == name for i in graph.input):
        return None
    return numpy_helper.to_array(init)


def _plain_2d(attrs: dict[str, Any], *extra_zero: str) -> bool:
    """Stride 1, dilation 1, one group, explicit padding: the only form the rewrites handle."""
    if attrs.get("group", 1) != 1 or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return False
    if any(v != 1 for v in attrs.get("strides", [1, 1])) or any(v != 1 for v in attrs.get("dilations", [1, 1])):
        return False
    return all(not any(attrs.get(k, [])) for k in extra_zero)


class _Builder:
    """Collects new initializers under names that cannot clash with the graph's own."""

    def __init__(self, graph: Any):
        self.graph = graph
        self._taken = {i.name for i in self.graph.initializer} | {v for n in self.graph.node for v in [*n.input, *n.output]}

    def name(self, base: str) -> str:
        candidate, k = base, 1
        while candidate in self._taken:
            candidate, k = f"{base}_{k}", k + 1
        self._taken.add(candidate)
        return candidate

    def const(self, base: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(base)
        self.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name


def _transposed_to_conv(node: Any, weight: np.ndarray, build: _Builder) -> list[Any] | None:
    from onnx import helper

    attrs = _attrs(node)
    if "output_shape" in attrs or not _plain_2d(attrs, "output_padding"):
        return None
    kh, kw = weight.shape[2:]
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    new_pads = [kh - 1 - pads[0], kw - 1 - pads[1], kh - 1 - pads[2], kw - 1 - pads[3]]
    if min(new_pads) < 0:
        return None
    flipped = np.flip(weight, axis=(2, 3)).transpose(1, 0, 2, 3)
    w_name = build.const(f"{node.input[1]}__as_conv", flipped)
    inputs = [node.input[0], w_name, *node.input[2:]]
    return [helper.make_node("Conv", inputs, list(node.output), name=build.name(f"{node.name or node.output[0]}__as_conv"),
                             kernel_shape=[int(kh), int(kw)], pads=new_pads)]


def _narrow_conv_as_rows(node: Any, weight: np.ndarray, bias: np.ndarray | None, build: _Builder) -> list[Any] | None:
    from onnx import helper

    out_ch, in_ch, kh, kw = weight.shape
    attrs = _attrs(node)
    if out_ch > MAX_NARROW_OUT or in_ch < MIN_NARROW_IN or kh < 2 or not _plain_2d(attrs):
        return None
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    base = node.name or node.output[0]
    rows_w = build.const(f"{node.input[1]}__rows", weight.transpose(2, 0, 1, 3).reshape(kh * out_ch, in_ch, 1, kw))
    rows = build.name(f"{base}__rows")
    # padding rows/columns of the input give zero rows/columns of the 1 x k result (no bias there)
    nodes = [helper.make_node("Conv", [node.input[0], rows_w], [rows], name=rows, kernel_shape=[1, int(kw)], pads=pads)]
    axes = build.const(f"{base}__axes", np.array([1, 2], np.int64))
    parts = []
    for ky in range(kh):
        end_row = ky - (kh - 1) if ky < kh - 1 else _INT64_MAX  # output row r reads result row r + ky
        starts = build.const(f"{base}__starts{ky}", np.array([ky * out_ch, ky], np.int64))
        ends = build.const(f"{base}__ends{ky}", np.array([(ky + 1) * out_ch, end_row], np.int64))
        part = build.name(f"{base}__row{ky}")
        nodes.append(helper.make_node("Slice", [rows, starts, ends, axes], [part], name=part))
        parts.append(part)
    if bias is not None:
        parts.append(build.const(f"{base}__bias", bias.reshape(1, out_ch, 1, 1)))
    nodes.append(helper.make_node("Sum", parts, list(node.output), name=build.name(f"{base}__sum")))
    return nodes


def rewrite_for_cpu(model: Any) -> list[str]:
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place; return one line per rewritten layer.

    Transposed convolutions go first, so one that becomes a narrow convolution (SARNN's last
    decoder layer, 16 -> 3 channels) is then split too. Unused initializers left behind are
    removed. A layer outside the handled forms is left as it is.
    """
    applied = _rewrite_pass(model, "ConvTranspose", _transposed_rewrite)
    applied += _rewrite_pass(model, "Conv", _narrow_rewrite)
    if applied:
        _drop_unused_initializers(model.graph)
    return applied


def _transposed_rewrite(node: Any, weight: np.ndarray, inits: dict[str, Any], build: _Builder) -> tuple[list[Any] | None, str]:
    return _transposed_to_conv(node, weight, build), "ConvTranspose -> Conv"


def _narrow_rewrite(node: Any, weight: np.ndarray, inits: dict[str, Any], build: _Builder) -> tuple[list[Any] | None, str]:
    from onnx import TensorProto, numpy_helper

    out_ch, in_ch, kh, kw = weight.shape
    what = f"Conv {in_ch}->{out_ch} {kh}x{kw} -> 1x{kw} rows + shifted sum"
    bias_name = node.input[2] if len(node.input) > 2 else ""
    bias_init = inits.get(bias_name) if bias_name else None
    if bias_name and (bias_init is None or bias_init.data_type != TensorProto.FLOAT):
        return None, what
    bias = numpy_helper.to_array(bias_init) if bias_init is not None else None
    return _narrow_conv_as_rows(node, weight, bias, build), what


def _rewrite_pass(model: Any, op_type: str, rewrite: Any) -> list[str]:
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    build = _Builder(graph)
    applied: list[str] = []
    new_nodes: list[Any] = []
    for node in graph.node:
        weight = _float_weight(graph, inits, node.input[1]) if node.op_type == op_type and len(node.input) > 1 else None
        replacement, what = rewrite(node, weight, inits, build) if weight is not None else (None, "")
        if replacement is None:
            new_nodes.append(node)
            continue
        new_nodes.extend(replacement)
        applied.append(f"{node.name or node.output[0]}: {what}")
    if applied:
        del graph.node[:]
        graph.node.extend(new_nodes)
    return applied


def _drop_unused_initializers(graph: Any) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    keep = [i for i in graph.initializer if i.name in used]
    if len(keep) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(keep)


def without_outputs(model: Any, drop: Iterable[str]) -> tuple[Any, int] | None:
    """A copy of ``model`` without the outputs ``drop`` and the nodes only they needed.

    Returns ``(pruned model, number of nodes removed)``, or ``None`` when nothing can be removed
    (no such output, nothing dead, or control-flow subgraphs this pruning does not look into).
    The graph inputs are kept as they are, so the same buffers bind to both graphs.
    """
    from onnx import AttributeProto, ModelProto

    drop = set(drop)
    if not drop & {o.name for o in model.graph.output}:
        return None
    if any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for n in model.graph.node for a in n.attribute):
        return None
    pruned = ModelProto()
    pruned.CopyFrom(model)
    graph = pruned.graph
    kept_outputs = [o for o in graph.output if o.name not in drop]
    needed = {o.name for o in kept_outputs}
    live = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            live.append(node)
            needed.update(i for i in node.input if i)
    removed = len(graph.node) - len(live)
    if removed == 0:
        return None
    del graph.output[:]
    graph.output.extend(kept_outputs)
    del graph.node[:]
    graph.node.extend(reversed(live))
    _drop_unused_initializers(graph)
    produced = {o for n in graph.node for o in n.output} | {i.name for i in graph.input} | {i.name for i in graph.initializer}
    keep_info = [v for v in graph.value_info if v.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(keep_info)
    return pruned, removed
