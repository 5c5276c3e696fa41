"""Convert an FP32 EIPL graph to an integer-only :class:`~eipl_trt.runners.integer.model.IntModel`.

Every tensor gets a signed width and a static scale from calibration (``act_bits`` for feature maps;
``state_bits`` for the LSTM state path, SARNN's softmax and every tensor of at most ``wide_elements``
values: gates, heads, key points); every rescale between a producer's scale and what the consumer
needs is resolved here, once, as a multiplier and shift (a pure shift with ``pow2``) and listed in
``model.alignments``. Ops:

* ``linear`` (Conv, ConvTranspose, Gemm, MatMul with constant weights): int8 weights per output
  channel, int32 bias in units of ``s_x * s_w``, 32-bit accumulator (saturating), requantization per
  channel, a following LeakyReLU/ReLU fused as a second (negative-side) multiplier;
* ``rescale`` (LeakyReLU/ReLU not fused, Neg, Div by a constant); ``add`` (Add/Sub, operands aligned
  to the output scale); ``mul``; ``reduce_sum``; ``reduce_max``; ``concat`` (inputs aligned);
  ``view``/``split`` (codes unchanged);
* ``lut`` (Sigmoid, Tanh, Exp: indexed by the input's top ``lut_bits`` bits, error over every input
  code stated); ``softmax`` (exp table on
  ``q - max q``, 32-bit sum, integer division);
* ``float`` for LayerNormalization and the ``float_layers`` (hybrid): dequantize, float op, quantize.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from eipl_trt.errors import ModelError
from eipl_trt.precision.lab.executor import Graph, Node
from eipl_trt.runners.integer.fixed import make_lut, multiplier
from eipl_trt.runners.integer.model import IntModel
from eipl_trt.runners.integer.ops import OPS
from eipl_trt.runners.integer.rounding import choose_scale, per_channel_max, qmax

__all__ = ["convert"]

_LUT_FNS = {"Sigmoid": lambda x: 1 / (1 + np.exp(-x)), "Tanh": np.tanh, "Exp": np.exp}
_VIEW = ("Reshape", "Flatten", "Unsqueeze", "Identity")
_LINEAR = ("Conv", "ConvTranspose", "Gemm", "MatMul")
ACC_BITS = 32


class _Converter:
    def __init__(self, graph: Graph, ranges: Mapping[str, float], shapes: Mapping[str, Sequence[int]],
                 act_bits: int, state_bits: int, pow2: bool, float_layers: Sequence[str], state: Sequence[str],
                 wide_elements: int = 0, lut_bits: int = 10):
        self.g, self.ranges, self.shapes, self.pow2 = graph, ranges, shapes, pow2
        self.act_bits, self.state_bits, self.lut_bits = act_bits, state_bits, lut_bits
        self.float_layers = set(float_layers)
        self.m = IntModel(inputs=list(graph.inputs), outputs=list(graph.outputs))
        self.consts: dict[str, np.ndarray] = dict(graph.initializers)
        self.consumers: dict[str, list[Node]] = {}
        for n in graph.nodes:
            for i in n.inputs:
                self.consumers.setdefault(i, []).append(n)
        self.wide = set(state) | {k for k, v in shapes.items() if 0 < int(np.prod(v)) <= wide_elements}
        for n in graph.nodes:
            if any(o in self.wide for o in n.outputs):
                self.wide.update(i for i in n.inputs if i not in self.consts)
            if n.op == "Softmax":
                self.wide.update([n.inputs[0], n.outputs[0]])

    # ------------------------------------------------------------------ tensors
    def scale_for(self, bits: int, max_abs: float) -> float:
        return float(choose_scale(max_abs, bits, "pow2" if self.pow2 else "float"))

    def declare(self, name: str, bits: int | None = None, scale: float | None = None) -> dict[str, Any]:
        if name in self.m.tensors:
            return self.m.tensors[name]
        if bits is None:
            bits = self.state_bits if name in self.wide else self.act_bits
        if scale is None:
            if name not in self.ranges:
                raise ModelError(f"no calibrated range for tensor {name!r}")
            scale = self.scale_for(bits, self.ranges[name])
        info = {"bits": int(bits), "scale": float(scale), "shape": [int(s) for s in self.shapes[name]]}
        self.m.tensors[name] = info
        return info

    def ratio(self, r: float, what: str, src: str, dst: str, s_from: float, s_to: float) -> tuple[int, int]:
        m, shift = multiplier(r, self.pow2)
        if abs(r - 1.0) > 1e-12:
            self.m.alignments.append({"op": what, "from": src, "to": dst, "scale_from": s_from, "scale_to": s_to,
                                      "ratio": r, "multiplier": m, "shift": shift,
                                      "relative_error": abs(m * 2.0 ** -shift - r) / abs(r)})
        return m, shift

    def const_tensor(self, name: str) -> str:
        """An integer copy of a constant operand (16 bits, its own scale)."""
        key = f"const:{name}"
        if key not in self.m.tensors:
            v = np.asarray(self.consts[name], np.float64)
            s = self.scale_for(16, float(np.abs(v).max()) if v.size else 0.0)
            self.m.arrays[key] = np.clip(np.floor(v / s + 0.5), -qmax(16), qmax(16)).astype(np.int16)
            self.m.tensors[key] = {"bits": 16, "scale": s, "shape": list(v.shape), "const": True}
        return key

    def operand(self, name: str) -> str:
        return self.const_tensor(name) if name in self.consts else name

    # ------------------------------------------------------------------ nodes
    def run(self) -> IntModel:
        for name in self.g.inputs:
            self.declare(name)
        fused: set[str] = set()
        for n in self.g.nodes:
            if n.name in fused or n.op == "Constant":
                if n.op == "Constant":
                    self.consts[n.outputs[0]] = n.attrs["value"]
                continue
            if n.op == "Identity" and n.inputs[0] in self.consts:
                self.consts[n.outputs[0]] = self.consts[n.inputs[0]]
                continue
            if n.name in self.float_layers or n.op in self.float_layers or n.op not in self._HANDLERS:
                self.float_op(n)
                continue
            act = self._fusable(n) if n.op in _LINEAR else None
            if act is not None:
                fused.add(act.name)
            self._HANDLERS[n.op](self, n, act)
        for name in self.g.outputs:
            self.declare(name)
        return self.m

    def _fusable(self, n: Node) -> Node | None:
        users = self.consumers.get(n.outputs[0], [])
        if len(users) == 1 and users[0].op in ("LeakyRelu", "Relu") and n.outputs[0] not in self.g.outputs:
            return users[0]
        return None

    def emit(self, op: str, n: Node, inputs: list[str], outputs: list[str], **attrs: Any) -> dict[str, Any]:
        rec = {"op": op, "name": n.name, "inputs": inputs, "outputs": outputs, "attrs": attrs}
        self.m.ops.append(rec)
        return rec

    def linear(self, n: Node, act: Node | None) -> None:
        if n.inputs[1] not in self.consts:
            raise ModelError(f"{n.name}: {n.op} with a non-constant second input is not supported in integers")
        x = self.declare(n.inputs[0])
        out = act.outputs[0] if act is not None else n.outputs[0]
        y = self.declare(out)
        w = np.asarray(self.consts[n.inputs[1]], np.float64)
        axis = self.g.weight_axis(n) % w.ndim
        s_w = choose_scale(per_channel_max(w, axis), 8, "pow2" if self.pow2 else "channel")
        shape = [1] * w.ndim
        shape[axis] = -1
        wq = np.clip(np.floor(w / s_w.reshape(shape) + 0.5), -127, 127).astype(np.int8)
        unit = x["scale"] * s_w
        b = self.consts.get(n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else None
        bq = np.zeros(wq.shape[axis], np.int64) if b is None else np.floor(np.asarray(b, np.float64) / unit + 0.5)
        if np.abs(bq).max(initial=0) > qmax(ACC_BITS):
            raise ModelError(f"{n.name}: a bias does not fit in int32 at this input scale")
        alpha = 0.0 if act is None else (float(act.attrs.get("alpha", 0.01)) if act.op == "LeakyRelu" else 0.0)
        mp, sp, mn, sn = [], [], [], []
        for c, u in enumerate(unit):
            m1, s1 = self.ratio(u / y["scale"], n.op, n.inputs[0], out, u, y["scale"])
            m2, s2 = multiplier(alpha * u / y["scale"], self.pow2) if act is not None else (m1, s1)
            mp.append(m1), sp.append(s1), mn.append(m2), sn.append(s2)
        key = n.name
        for suffix, arr in (("w", wq), ("b", bq.astype(np.int32)), ("mp", np.array(mp, np.int32)), ("sp", np.array(sp, np.int32)),
                            ("mn", np.array(mn, np.int32)), ("sn", np.array(sn, np.int32))):
            self.m.arrays[f"{key}:{suffix}"] = arr
        attrs = {k: [int(v) for v in val] if isinstance(val, (list, tuple)) else val for k, val in n.attrs.items()
                 if k in ("strides", "pads", "output_padding", "transB")}
        self.emit("linear", n, [n.inputs[0]], [out], kind=n.op, params=key, acc_bits=ACC_BITS,
                  fused=act.op if act is not None else "", **attrs)

    def rescale(self, n: Node, act: Node | None) -> None:
        x = self.declare(n.inputs[0])
        y = self.declare(n.outputs[0])
        r = x["scale"] / y["scale"]
        pos, neg = r, r
        if n.op == "Relu":
            neg = 0.0
        elif n.op == "LeakyRelu":
            neg = r * float(n.attrs.get("alpha", 0.01))
        elif n.op == "Neg":
            pos = neg = -r
        elif n.op == "Div":
            k = np.asarray(self.consts.get(n.inputs[1], np.nan), np.float64)
            if k.size != 1 or not np.isfinite(k).all() or float(k) == 0:
                raise ModelError(f"{n.name}: Div by a non-constant or zero is not supported in integers")
            pos = neg = r / float(k)
        mp, sp = self.ratio(pos, n.op, n.inputs[0], n.outputs[0], x["scale"], y["scale"])
        mn, sn = multiplier(neg, self.pow2)
        self.emit("rescale", n, [n.inputs[0]], [n.outputs[0]], mp=mp, sp=sp, mn=mn, sn=sn)

    def add(self, n: Node, act: Node | None) -> None:
        a, b = self.operand(n.inputs[0]), self.operand(n.inputs[1])
        ta, tb, y = self.declare(a), self.declare(b), self.declare(n.outputs[0])
        ra, rb = ta["scale"] / y["scale"], tb["scale"] / y["scale"] * (-1 if n.op == "Sub" else 1)
        big = max(abs(ra), abs(rb))
        _, shift = multiplier(big, False)
        if self.pow2 and all(abs(r) == 2.0 ** np.floor(np.log2(abs(r))) for r in (ra, rb)):
            shift = max(0, -int(np.floor(np.log2(min(abs(ra), abs(rb))))))
        ma, mb = int(round(ra * 2.0 ** shift)), int(round(rb * 2.0 ** shift))
        for src, r, m in ((a, ra, ma), (b, rb, mb)):
            self.m.alignments.append({"op": n.op, "from": src, "to": n.outputs[0], "scale_from": self.m.tensors[src]["scale"],
                                      "scale_to": y["scale"], "ratio": r, "multiplier": m, "shift": shift,
                                      "relative_error": abs(m * 2.0 ** -shift - r) / abs(r) if r else 0.0})
        self.emit("add", n, [a, b], [n.outputs[0]], ma=ma, mb=mb, shift=shift)

    def mul(self, n: Node, act: Node | None) -> None:
        a, b = self.operand(n.inputs[0]), self.operand(n.inputs[1])
        ta, tb, y = self.declare(a), self.declare(b), self.declare(n.outputs[0])
        if ta["bits"] + tb["bits"] + 16 > 62:
            raise ModelError(f"{n.name}: operands too wide for a 64-bit product")
        m, shift = self.ratio(ta["scale"] * tb["scale"] / y["scale"], "Mul", f"{a}*{b}", n.outputs[0],
                              ta["scale"] * tb["scale"], y["scale"])
        self.emit("mul", n, [a, b], [n.outputs[0]], m=m, shift=shift)

    def lut(self, n: Node, act: Node | None) -> None:
        x, y = self.declare(n.inputs[0]), self.declare(n.outputs[0])
        table, err = make_lut(_LUT_FNS[n.op], x["scale"], x["bits"], y["scale"], y["bits"], self.lut_bits)
        self.m.arrays[f"{n.name}:lut"] = table
        self.m.luts[n.name] = {"fn": n.op, "in": n.inputs[0], **err}
        self.emit("lut", n, [n.inputs[0]], [n.outputs[0]], table=f"{n.name}:lut", shift=err["shift"], offset=err["offset"])

    def softmax(self, n: Node, act: Node | None) -> None:
        one = 1 << (self.state_bits - 1) if self.pow2 else qmax(self.state_bits)  # the code of probability 1
        x = self.declare(n.inputs[0])
        self.declare(n.outputs[0], scale=1.0 / one)  # probabilities: code `one` is 1.0
        # exp(d * s) for d = q - max(q) <= 0, as unsigned Q16; entries below half an LSB are 0
        d = np.arange(0, 2 * qmax(x["bits"]) + 1, dtype=np.float64)
        table = np.floor(np.exp(-d * x["scale"]) * 65536 + 0.5).astype(np.int64)
        table = table[: max(1, int(np.count_nonzero(table)))].astype(np.int32)
        self.m.arrays[f"{n.name}:exp"] = table
        self.m.luts[n.name] = {"fn": "Softmax exp(q - max q)", "in": n.inputs[0], "entries": int(table.size),
                               "bytes": int(table.size * 4), "max_abs_error": 2.0 ** -17, "max_error_codes": 0.5,
                               "note": "exp table in Q16 (error <= 2^-17 per entry); output = round(e * one / sum e)"}
        self.emit("softmax", n, [n.inputs[0]], [n.outputs[0]], axis=int(n.attrs.get("axis", -1)), exp=f"{n.name}:exp",
                  one=one)

    def reduce(self, n: Node, act: Node | None) -> None:
        axes = n.attrs.get("axes")
        if axes is None and len(n.inputs) > 1 and n.inputs[1]:
            axes = [int(a) for a in np.asarray(self.consts[n.inputs[1]]).reshape(-1)]
        keep = int(n.attrs.get("keepdims", 1))
        x = self.declare(n.inputs[0])
        if n.op == "ReduceMax":
            self.declare(n.outputs[0], bits=x["bits"], scale=x["scale"])
            self.emit("reduce_max", n, [n.inputs[0]], [n.outputs[0]], axes=list(axes), keepdims=keep)
            return
        y = self.declare(n.outputs[0])
        m, shift = self.ratio(x["scale"] / y["scale"], n.op, n.inputs[0], n.outputs[0], x["scale"], y["scale"])
        self.emit("reduce_sum", n, [n.inputs[0]], [n.outputs[0]], axes=list(axes), keepdims=keep, m=m, shift=shift)

    def view(self, n: Node, act: Node | None) -> None:
        x = self.declare(self.operand(n.inputs[0]))
        self.declare(n.outputs[0], bits=x["bits"], scale=x["scale"])
        self.emit("view", n, [self.operand(n.inputs[0])], [n.outputs[0]], shape=list(self.shapes[n.outputs[0]]))

    def split(self, n: Node, act: Node | None) -> None:
        x = self.declare(n.inputs[0])
        sizes = [int(v) for v in np.asarray(self.consts[n.inputs[1]]).reshape(-1)]
        for o in n.outputs:
            self.declare(o, bits=x["bits"], scale=x["scale"])
        self.emit("split", n, [n.inputs[0]], list(n.outputs), axis=int(n.attrs.get("axis", 0)), sizes=sizes)

    def concat(self, n: Node, act: Node | None) -> None:
        ins = [self.operand(i) for i in n.inputs]
        y = self.declare(n.outputs[0])
        ms, ss = [], []
        for i in ins:
            t = self.declare(i)
            m, s = self.ratio(t["scale"] / y["scale"], "Concat", i, n.outputs[0], t["scale"], y["scale"])
            ms.append(m), ss.append(s)
        self.emit("concat", n, ins, [n.outputs[0]], axis=int(n.attrs.get("axis", 0)), m=ms, shift=ss)

    def float_op(self, n: Node) -> None:
        ins = []
        for i in n.inputs:
            if i in self.consts or i == "":
                key = f"float:{i}"
                if i:
                    self.m.arrays[key] = np.asarray(self.consts[i])
                ins.append(key if i else "")
            else:
                self.declare(i)
                ins.append(i)
        for o in n.outputs:
            self.declare(o)
        attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in n.attrs.items()}
        attrs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in attrs.items()}
        if n.op not in OPS:
            raise ModelError(f"{n.name}: {n.op} cannot run even in float")
        self.m.float_layers.append(n.name)
        self.emit("float", n, ins, list(n.outputs), onnx_op=n.op, onnx_attrs=attrs)

    _HANDLERS = {"Conv": linear, "ConvTranspose": linear, "Gemm": linear, "MatMul": linear,
                 "LeakyRelu": rescale, "Relu": rescale, "Neg": rescale, "Div": rescale,
                 "Add": add, "Sub": add, "Mul": mul, "Sigmoid": lut, "Tanh": lut, "Exp": lut, "Softmax": softmax,
                 "ReduceSum": reduce, "ReduceMax": reduce, "Reshape": view, "Flatten": view, "Unsqueeze": view,
                 "Identity": view, "Split": split, "Concat": concat}


def convert(graph: Graph, ranges: Mapping[str, float], shapes: Mapping[str, Sequence[int]], *, act_bits: int = 8,
            state_bits: int = 16, pow2: bool = False, float_layers: Sequence[str] = (),
            state: Sequence[str] = (), wide_elements: int = 1024, lut_bits: int = 10) -> IntModel:
    """Build the integer model (see the module docstring).

    Args:
        graph: the FP32 model.
        ranges: calibrated max |x| per tensor (with any headroom already applied).
        shapes: every tensor's shape (from one FP32 step).
        act_bits: width of ordinary activations; ``state_bits``: of the LSTM state path and softmax.
        pow2: power-of-two scales (every requantization a pure shift).
        float_layers: node names or op types left in float (LayerNormalization always is).
        state: names of the recurrent state tensors (inputs and outputs).
        wide_elements: tensors of at most this many elements (LSTM gates, heads, key points) also get
            ``state_bits``: they cost little memory and carry the recurrent loop; 0 = only the state path.
        lut_bits: sigmoid/tanh/exp tables are indexed by at most this many top bits of their input.
    """
    model = _Converter(graph, ranges, shapes, act_bits, state_bits, pow2, float_layers, state, wide_elements, lut_bits).run()
    model.meta.update({"wide_elements": wide_elements, "lut_index_bits": lut_bits, "act_bits": act_bits, "state_bits": state_bits, "weight_bits": 8, "bias_bits": 32,
                       "acc_bits": ACC_BITS, "scales": "pow2" if pow2 else "float (per-channel weights)"})
    return model
