"""Bit-exact numpy executor of an :class:`~eipl_trt.runners.integer.model.IntModel`.

Every tensor is an int64 array of codes within its declared signed width (``tensors[name]["bits"]``);
each op's intermediate widths are declared below and enforced by saturation (counted in
:attr:`IntExecutor.saturations`). Integer sums of products are computed by a float64 matmul, which
is exact while |sum| < 2**53 (8-bit x 16-bit x 10^5 terms is far below); the executor checks it.

Op semantics (``rq(x, M, s, b) = sat_b((x * M + 2**(s-1)) >> s)``, arithmetic shift, round half up):

* ``linear``: ``acc = sat_32(sum(x * w) + b)``; ``y = rq(acc, mp, sp)`` where ``acc >= 0`` else
  ``rq(acc, mn, sn)`` (fused LeakyReLU/ReLU), per output channel; products 48 bits.
* ``rescale``: as linear's requantization, on the input codes. ``add``: ``rq(a*ma + b*mb, 1, shift)``.
* ``mul``: ``rq(a*b, m, shift)`` (a*b at most 32 bits, times m 48). ``reduce_sum``: ``rq(sum, m, shift)``
  (sum 32 bits); ``reduce_max``: max of codes. ``concat``: each input ``rq(x, m_i, shift_i)``.
* ``lut``: ``table[((x + 2**(k-1)) >> k) + offset]`` (``k = 0``: ``table[x + offset]``). ``softmax``: ``e = exp_table[min(max(x) - x, len-1)]`` (Q16;
  0 beyond the table), ``y = sat((e * one + sum(e) // 2) // sum(e))`` (sum 32 bits; ``one`` = the code
  of probability 1: ``qmax(out_bits)``, or ``2**(out_bits-1)`` with power-of-two scales).
* ``view``/``split``: codes unchanged. ``float``: dequantize, the ONNX op in float64, requantize
  (round half up) -- only in hybrid models.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from eipl_trt.errors import ModelError
from eipl_trt.runners.integer.fixed import requant, sat
from eipl_trt.runners.integer.model import IntModel
from eipl_trt.runners.integer.ops import OPS, conv2d, conv_transpose2d
from eipl_trt.runners.integer.rounding import qmax, shift_right

__all__ = ["IntExecutor"]

_EXACT = float(2 ** 53)


class IntExecutor:
    """Runs an integer model; ``saturations`` counts clipped values per op since construction."""

    def __init__(self, model: IntModel):
        self.m = model
        self.saturations: dict[str, int] = {}

    def quantize_input(self, name: str, x: np.ndarray) -> np.ndarray:
        """Float -> codes of graph input ``name`` (round half up, saturate)."""
        t = self.m.tensors[name]
        return sat(np.floor(np.asarray(x, np.float64) / t["scale"] + 0.5).astype(np.int64), t["bits"], self.saturations, name)

    def dequantize(self, name: str, q: np.ndarray) -> np.ndarray:
        """Codes -> float32 real values."""
        return (q * self.m.tensors[name]["scale"]).astype(np.float32)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Float inputs -> float outputs (quantized at the boundary)."""
        codes = self.run_codes({k: self.quantize_input(k, v) for k, v in feeds.items()})
        return {k: self.dequantize(k, v) for k, v in codes.items()}

    def run_codes(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Integer codes in -> integer codes of every graph output."""
        env: dict[str, np.ndarray] = {}
        for name in self.m.inputs:
            if name not in feeds:
                raise ModelError(f"missing input {name!r}; the model needs {self.m.inputs}")
            env[name] = np.asarray(feeds[name], np.int64)
        for op in self.m.ops:
            args = [self._value(env, i) for i in op["inputs"]]
            outs = getattr(self, "_" + op["op"])(op, args)
            for name, value in zip(op["outputs"], outs):
                env[name] = value
        return {name: env[name] for name in self.m.outputs}

    def _value(self, env: Mapping[str, np.ndarray], name: str) -> Any:
        if name == "":
            return None
        if name in env:
            return env[name]
        if name in self.m.arrays:
            a = self.m.arrays[name]
            return a if name.startswith("float:") else a.astype(np.int64)
        raise ModelError(f"tensor {name!r} is used before it is computed: the integer model is malformed")

    def _bits(self, name: str) -> int:
        return int(self.m.tensors[name]["bits"])

    # ------------------------------------------------------------------ ops
    def _linear(self, op: dict[str, Any], args: list[Any]) -> list[np.ndarray]:
        a, p = op["attrs"], op["attrs"]["params"]
        x = args[0].astype(np.float64)
        w = self.m.arrays[f"{p}:w"].astype(np.float64)
        kind = a["kind"]
        if kind == "Conv":
            acc_f = conv2d(x, w, None, a.get("strides", (1, 1)), a.get("pads", (0, 0, 0, 0)))
            ch = (1, -1, 1, 1)
        elif kind == "ConvTranspose":
            acc_f = conv_transpose2d(x, w, None, a.get("strides", (1, 1)), a.get("pads", (0, 0, 0, 0)),
                                     a.get("output_padding", (0, 0)))
            ch = (1, -1, 1, 1)
        elif kind == "Gemm":
            acc_f = x @ (w.T if a.get("transB", 0) else w)
            ch = (1, -1)
        else:
            acc_f = x @ w
            ch = (1,) * (x.ndim - 1) + (-1,)
        if np.abs(acc_f).max(initial=0) >= _EXACT:
            raise ModelError(f"{op['name']}: a sum reached 2^53; float64 is no longer exact")
        acc = np.rint(acc_f).astype(np.int64) + self.m.arrays[f"{p}:b"].astype(np.int64).reshape(ch)
        acc = sat(acc, int(a["acc_bits"]), self.saturations, op["name"] + " (accumulator)")
        bits = self._bits(op["outputs"][0])
        get = (lambda k: self.m.arrays[f"{p}:{k}"].astype(np.int64).reshape(ch))
        pos = requant(acc, get("mp"), get("sp"), bits)
        neg = requant(acc, get("mn"), get("sn"), bits)
        return [sat(np.where(acc >= 0, pos, neg), bits, self.saturations, op["name"])]

    def _rescale(self, op: dict[str, Any], args: list[Any]) -> list[np.ndarray]:
        a, bits = op["attrs"], self._bits(op["outputs"][0])
        x = args[0]
        y = np.where(x >= 0, requant(x, a["mp"], a["sp"], bits), requant(x, a["mn"], a["sn"], bits))
        return [sat(y, bits, self.saturations, op["name"])]

    def _add(self, op: dict[str, Any], args: list[Any]) -> list[np.ndarray]:
        a = op["attrs"]
        s = args[0] * a["ma"] + args[1] * a["mb"]
        return [requant(s, 1, a["shift"], self._bits(op["outputs"][0]), self.saturations, op["name"])]

    def _mul(self, op: dict[str, Any], args: list[Any]) -> list[np.ndarray]:
        a = op["attrs"]
        return [requant(args[0] * args[1], a["m"], a["shift"], self._bits(op["outputs"][0]), self.saturations, op["name"])]

    def _lut(self, op: dict[str, Any], args: list[Any]) -> list[np.ndarray]:
        a = op["attrs"]
        table = self.m.arrays[a["table"]].astype(np.int64)
        return [table[shift_right(args[0], a["shift"], "nearest") + a["offset"]]]

    def _softmax(self, op: dict[str, Any], args: list[Any]) -> list[np.ndarray]:
        axis = op["attrs"]["axis"]
        x = args[0]
        table = self.m.arrays[op["attrs"]["exp"]].astype(np.int64)
        d = x.max(axis=axis, keepdims=True) - x
        e = np.where(d < table.size, table[np.minimum(d, table.size - 1)], 0)
        total = sat(e.sum(axis=axis, keepdims=True), 32, self.saturations, op["name"] + " (sum)")
        bits = self._bits(op["outputs"][0])
        one = int(op["attrs"].get("one", qmax(bits)))
        return [sat((e * one + total // 2) // total, bits, self.saturations, op["name"])]

    def _reduce_sum(self, op: dict[str, Any], args: list[Any]) -> list[np.ndarray]:
        a = op["attrs"]
        s = sat(args[0].sum(axis=tuple(a["axes"]), keepdims=bool(a["keepdims"])), 32, self.saturations, op["name"] + " (sum)")
        return [requant(s, a["m"], a["shift"], self._bits(op["outputs"][0]), self.saturations, op["name"])]

    def _reduce_max(self, op: dict[str, Any], args: list[Any]) -> list[np.ndarray]:
        a = op["attrs"]
        return [args[0].max(axis=tuple(a["axes"]), keepdims=bool(a["keepdims"]))]

    def _view(self, op: dict[str, Any], args: list[Any]) -> list[np.ndarray]:
        return [args[0].reshape(op["attrs"]["shape"])]

    def _split(self, op: dict[str, Any], args: list[Any]) -> list[np.ndarray]:
        a = op["attrs"]
        return list(np.split(args[0], np.cumsum(a["sizes"])[:-1], axis=a["axis"]))

    def _concat(self, op: dict[str, Any], args: list[Any]) -> list[np.ndarray]:
        a, bits = op["attrs"], self._bits(op["outputs"][0])
        parts = [requant(x, m, s, bits, self.saturations, op["name"]) for x, m, s in zip(args, a["m"], a["shift"])]
        return [np.concatenate(parts, axis=a["axis"])]

    def _float(self, op: dict[str, Any], args: list[Any]) -> list[np.ndarray]:
        a = op["attrs"]
        real = []
        for name, v in zip(op["inputs"], args):
            if v is None or name.startswith("float:"):
                real.append(v)
            else:
                real.append(v * float(self.m.tensors[name]["scale"]))
        out = OPS[a["onnx_op"]](*real, **a["onnx_attrs"])
        outs = out if isinstance(out, list) else [out]
        res = []
        for name, v in zip(op["outputs"], outs):
            t = self.m.tensors[name]
            res.append(sat(np.floor(np.asarray(v, np.float64) / t["scale"] + 0.5).astype(np.int64), t["bits"],
                           self.saturations, op["name"]))
        return res
