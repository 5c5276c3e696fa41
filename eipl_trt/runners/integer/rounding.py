"""Rounding, saturation and scale choice: the arithmetic every quantizer in the lab shares.

Conventions (the same in the fake-quantized float executor and in the integer executor):

* signed symmetric integers of ``bits`` bits: ``q`` in ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``
  (the most negative code is left unused, so negation never overflows), zero point 0;
* ``nearest``: round half **up** (ties toward +inf): ``floor(x + 0.5)``. It is what the hardware
  idiom ``(acc + (1 << (s - 1))) >> s`` computes, so a fake-quantized model and the integer
  executor round ties identically: 2.5 -> 3, -2.5 -> -2, -2.6 -> -3;
* ``floor``: cut the LSBs, ``floor(x)`` (an arithmetic shift right): 2.7 -> 2, -2.2 -> -3;
* ``stochastic``: ``floor(x + u)``, ``u ~ U[0, 1)`` from a seeded generator; unbiased in expectation.

Scales: ``float`` (max |x| / qmax, per tensor or per channel) or ``pow2`` (fixed point: the
smallest power of two with max |x| / scale <= qmax, so every rescale is a pure shift).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from eipl_trt.errors import InputError

__all__ = ["ROUNDING_MODES", "SCALE_KINDS", "qmax", "round_values", "saturate", "quantize", "fake_quantize",
           "choose_scale", "shift_right"]

ROUNDING_MODES = ("nearest", "floor", "stochastic")
SCALE_KINDS = ("float", "channel", "pow2")


def qmax(bits: int) -> int:
    """Largest code of a signed symmetric ``bits``-bit integer, ``2**(bits-1) - 1``."""
    if not 2 <= int(bits) <= 32:
        raise InputError(f"bit width {bits} is outside 2..32")
    return (1 << (int(bits) - 1)) - 1


def round_values(x: np.ndarray, mode: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Round ``x`` to integers (still a float array) with ``mode`` (see the module docstring).

    Raises:
        InputError: an unknown mode, or ``stochastic`` without a generator.
    """
    if mode == "nearest":
        return np.floor(x + 0.5)
    if mode == "floor":
        return np.floor(x)
    if mode == "stochastic":
        if rng is None:
            raise InputError("stochastic rounding needs a seeded numpy Generator")
        return np.floor(x + rng.random(np.shape(x)))
    raise InputError(f"unknown rounding mode {mode!r}; choose one of {', '.join(ROUNDING_MODES)}")


def saturate(q: np.ndarray, bits: int) -> np.ndarray:
    """Clip integer codes to the signed symmetric ``bits``-bit range."""
    m = qmax(bits)
    return np.clip(q, -m, m)


def quantize(x: np.ndarray, scale: np.ndarray | float, bits: int, mode: str = "nearest",
             rng: np.random.Generator | None = None) -> np.ndarray:
    """Integer codes ``saturate(round(x / scale))`` as float64 (exact integers)."""
    return saturate(round_values(np.asarray(x, np.float64) / scale, mode, rng), bits)


def fake_quantize(x: np.ndarray, scale: np.ndarray | float, bits: int, mode: str = "nearest",
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """``quantize(x) * scale``: the value the hardware would hold, back in real units (float64)."""
    return quantize(x, scale, bits, mode, rng) * scale


def choose_scale(max_abs: np.ndarray | float, bits: int, kind: str) -> np.ndarray:
    """Scale(s) that map ``max_abs`` onto the code range.

    Args:
        max_abs: calibrated max |x|, a scalar (per tensor) or an array (per channel).
        bits: code width.
        kind: ``float``/``channel`` (``max_abs / qmax``) or ``pow2`` (next power of two up).

    Returns:
        float64 array of the same shape; a zero range gets scale 1 (all codes 0).
    """
    m = np.asarray(max_abs, np.float64)
    safe = np.where(m > 0, m, 1.0) / qmax(bits)
    if kind in ("float", "channel"):
        return safe
    if kind == "pow2":
        return np.exp2(np.ceil(np.log2(safe)))
    raise InputError(f"unknown scale kind {kind!r}; choose one of {', '.join(SCALE_KINDS)}")


def shift_right(acc: np.ndarray, shift: int | np.ndarray, mode: str = "nearest") -> np.ndarray:
    """Integer ``acc / 2**shift`` rounded as ``mode`` says (``nearest`` = add half, then arithmetic shift).

    ``acc`` must be an integer array (int64); negative shifts are left shifts. ``stochastic`` is
    not offered in the integer path (it needs a hardware random source).
    """
    a = np.asarray(acc, np.int64)
    s = np.asarray(shift, np.int64)
    if np.any(s < 0):
        a = np.where(s < 0, a << np.maximum(-s, 0), a)
        s = np.maximum(s, 0)
    if mode == "nearest":
        half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
        return (a + half) >> s
    if mode == "floor":
        return a >> s
    raise InputError(f"integer rescaling supports rounding 'nearest' or 'floor', not {mode!r}")


def per_channel_max(x: np.ndarray, axis: int | None) -> np.ndarray | float:
    """max |x| over everything (``axis=None``) or over all axes but ``axis`` (kept as a 1-D array)."""
    a = np.abs(np.asarray(x, np.float64))
    if axis is None:
        return float(a.max()) if a.size else 0.0
    axes: Sequence[int] = tuple(i for i in range(a.ndim) if i != axis % a.ndim)
    return a.max(axis=tuple(axes))


def log2_int(x: float) -> int:
    """``ceil(log2(x))`` for x > 0."""
    return int(math.ceil(math.log2(x)))
