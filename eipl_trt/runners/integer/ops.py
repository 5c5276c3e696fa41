"""Float numpy implementations of the ONNX operators the EIPL exports use (opset 17).

Each function follows the ONNX operator's definition for the attributes these models use; an
attribute outside that (dilation, groups, auto_pad) raises :class:`~eipl_trt.errors.ModelError`
instead of computing something else. Arrays keep the dtype they come in with (float32 for the
FP32 reference, float64 where the lab emulates integer accumulators exactly).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from eipl_trt.errors import ModelError

__all__ = ["conv2d", "conv_transpose2d", "OPS"]


def _check_plain(attrs: Mapping[str, Any], op: str) -> None:
    if any(d != 1 for d in attrs.get("dilations", [1, 1])) or int(attrs.get("group", 1)) != 1:
        raise ModelError(f"{op} with dilation or groups is not supported by the quantization lab")
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ModelError(f"{op} with auto_pad is not supported by the quantization lab")


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, strides: Sequence[int] = (1, 1),
           pads: Sequence[int] = (0, 0, 0, 0)) -> np.ndarray:
    """NCHW convolution (batch 1 or more), weights ``(Cout, Cin, kh, kw)``, by im2col and one matmul."""
    n, c, _, _ = x.shape
    cout, cin, kh, kw = w.shape
    if cin != c:
        raise ModelError(f"Conv: input has {c} channels, weights expect {cin}")
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, :: strides[0], :: strides[1]]
    ho, wo = win.shape[2], win.shape[3]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
    y = cols @ w.reshape(cout, -1).T.astype(cols.dtype, copy=False)
    y = y.reshape(n, ho, wo, cout).transpose(0, 3, 1, 2)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1).astype(y.dtype, copy=False)
    return np.ascontiguousarray(y)


def conv_transpose2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, strides: Sequence[int] = (1, 1),
                     pads: Sequence[int] = (0, 0, 0, 0), output_padding: Sequence[int] = (0, 0)) -> np.ndarray:
    """NCHW transposed convolution, weights ``(Cin, Cout, kh, kw)``: zero-insert, pad, convolve with the flipped kernel."""
    n, c, h, wd = x.shape
    cin, cout, kh, kw = w.shape
    sh, sw = strides
    if sh > 1 or sw > 1:
        z = np.zeros((n, c, (h - 1) * sh + 1, (wd - 1) * sw + 1), x.dtype)
        z[:, :, ::sh, ::sw] = x
        x = z
    pt, pl, pb, pr = pads[0], pads[1], pads[2], pads[3]
    ph = (kh - 1 - pt, kh - 1 - pb + output_padding[0])
    pw = (kw - 1 - pl, kw - 1 - pr + output_padding[1])
    if min(ph + pw) < 0:
        raise ModelError("ConvTranspose with pads larger than the kernel is not supported by the quantization lab")
    wf = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    return conv2d(x, wf, b, (1, 1), (ph[0], pw[0], ph[1], pw[1]))


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _layer_norm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray | None, axis: int = -1, epsilon: float = 1e-5) -> np.ndarray:
    axes = tuple(range(axis % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + np.asarray(epsilon, x.dtype)) * scale
    return y + bias if bias is not None else y


def _gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None, alpha: float = 1.0, beta: float = 1.0,
          transA: int = 0, transB: int = 0) -> np.ndarray:
    a = a.T if transA else a
    b = b.T if transB else b
    y = a @ b.astype(a.dtype, copy=False)
    if alpha != 1.0:
        y = y * np.asarray(alpha, y.dtype)
    if c is not None:
        y = y + (c * np.asarray(beta, y.dtype) if beta != 1.0 else c).astype(y.dtype, copy=False)
    return y


def _reshape(x: np.ndarray, shape: np.ndarray, allowzero: int = 0) -> np.ndarray:
    target = [int(s) if not (s == 0 and not allowzero) else x.shape[i] for i, s in enumerate(shape)]
    return x.reshape(target)


def _split(x: np.ndarray, split: np.ndarray | None = None, axis: int = 0, num_outputs: int | None = None) -> list[np.ndarray]:
    if split is None:
        raise ModelError("Split without explicit sizes is not supported by the quantization lab")
    edges = np.cumsum([int(s) for s in split])[:-1]
    return list(np.split(x, edges, axis=axis))


def _reduce(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def op(x: np.ndarray, axes_in: np.ndarray | None = None, axes: Sequence[int] | None = None, keepdims: int = 1,
           noop_with_empty_axes: int = 0) -> np.ndarray:
        ax = axes_in if axes_in is not None else axes
        return fn(x, axis=None if ax is None else tuple(int(a) for a in ax), keepdims=bool(keepdims))
    return op


def _unsqueeze(x: np.ndarray, axes: np.ndarray) -> np.ndarray:
    out = x
    for a in sorted(int(v) % (x.ndim + len(axes)) for v in axes):
        out = np.expand_dims(out, a)
    return out


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, **attrs: Any) -> np.ndarray:
    _check_plain(attrs, "Conv")
    return conv2d(x, w, b, attrs.get("strides", (1, 1)), attrs.get("pads", (0, 0, 0, 0)))


def _convt(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, **attrs: Any) -> np.ndarray:
    _check_plain(attrs, "ConvTranspose")
    if "output_shape" in attrs:
        raise ModelError("ConvTranspose with output_shape is not supported by the quantization lab")
    return conv_transpose2d(x, w, b, attrs.get("strides", (1, 1)), attrs.get("pads", (0, 0, 0, 0)),
                            attrs.get("output_padding", (0, 0)))


def _leaky(x: np.ndarray, alpha: float = 0.01) -> np.ndarray:
    return np.where(x >= 0, x, x * np.asarray(alpha, x.dtype))


#: op_type -> fn(*inputs, **attributes) -> output or list of outputs.
OPS: dict[str, Callable[..., Any]] = {
    "Conv": _conv,
    "ConvTranspose": _convt,
    "Gemm": _gemm,
    "MatMul": lambda a, b: a @ b.astype(a.dtype, copy=False),
    "LeakyRelu": _leaky,
    "Relu": lambda x: np.maximum(x, np.zeros((), x.dtype)),
    "Tanh": np.tanh,
    "Sigmoid": lambda x: (1 / (1 + np.exp(-x))).astype(x.dtype, copy=False),
    "Exp": np.exp,
    "Neg": np.negative,
    "Add": lambda a, b: a + b,
    "Sub": lambda a, b: a - b,
    "Mul": lambda a, b: a * b,
    "Div": lambda a, b: a / b,
    "Pow": lambda a, b: np.power(a, b),
    "Sqrt": np.sqrt,
    "Softmax": lambda x, axis=-1: _softmax(x, int(axis)),
    "ReduceMax": _reduce(np.max),
    "ReduceSum": _reduce(np.sum),
    "ReduceMean": _reduce(np.mean),
    "Reshape": _reshape,
    "Flatten": lambda x, axis=1: x.reshape(int(np.prod(x.shape[:axis])), -1),
    "Concat": lambda *xs, axis=0: np.concatenate(xs, axis=int(axis)),
    "Split": _split,
    "Unsqueeze": _unsqueeze,
    "Identity": lambda x: x,
    "LayerNormalization": _layer_norm,
}
