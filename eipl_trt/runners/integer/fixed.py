"""Integer building blocks: static requantization (multiplier + shift), LUTs, saturation with declared widths.

A real ratio ``r = s_in / s_out`` becomes ``M * 2**-shift`` with a signed 16-bit multiplier
(``|M|`` in ``[2**14, 2**15)``, relative error <= 2**-15) or, when ``r`` is an exact power of two
(power-of-two scales), ``M = 1`` and a pure shift. ``requant(x) = sat(round_half_up(x * M / 2**shift))``
is computed as ``(x * M + 2**(shift-1)) >> shift`` (arithmetic shift); a product of a 32-bit
accumulator and a 16-bit multiplier needs 48 bits, which is the declared width of that step.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from eipl_trt.errors import ModelError
from eipl_trt.runners.integer.rounding import qmax, shift_right

__all__ = ["multiplier", "requant", "sat", "make_lut", "PRODUCT_BITS", "MULT_BITS"]

#: Width of a multiplier (signed), and of accumulator x multiplier products.
MULT_BITS = 16
PRODUCT_BITS = 48


def multiplier(ratio: float, pow2: bool = False) -> tuple[int, int]:
    """``(M, shift)`` with ``M * 2**-shift ~= ratio`` (exact for a power-of-two ratio when ``pow2``).

    Raises:
        ModelError: a non-finite ratio.
    """
    if not math.isfinite(ratio):
        raise ModelError(f"cannot requantize by a non-finite ratio {ratio}")
    if ratio == 0:
        return 0, 0
    e = math.floor(math.log2(abs(ratio)))
    if pow2 and abs(ratio) == 2.0 ** e:
        return (1 if ratio > 0 else -1), -e
    shift = (MULT_BITS - 2) - e
    m = int(round(abs(ratio) * 2.0 ** shift))
    if m >= 1 << (MULT_BITS - 1):  # rounding carried into the next bit
        m, shift = m >> 1, shift - 1
    return (m if ratio > 0 else -m), shift


def sat(x: np.ndarray, bits: int, counter: dict[str, int] | None = None, where: str = "") -> np.ndarray:
    """Clip int64 ``x`` to signed symmetric ``bits``; count clipped values in ``counter[where]``."""
    m = qmax(bits)
    if counter is not None:
        n = int(np.count_nonzero((x > m) | (x < -m)))
        if n:
            counter[where] = counter.get(where, 0) + n
    return np.clip(x, -m, m)


def requant(x: np.ndarray, m: np.ndarray | int, shift: np.ndarray | int, bits: int,
            counter: dict[str, int] | None = None, where: str = "") -> np.ndarray:
    """``sat(round_half_up(x * m / 2**shift), bits)`` in int64 (products are at most 48 bits)."""
    prod = np.asarray(x, np.int64) * np.asarray(m, np.int64)
    return sat(shift_right(prod, shift, "nearest"), bits, counter, where)


def make_lut(fn: Callable[[np.ndarray], np.ndarray], in_scale: float, in_bits: int, out_scale: float,
             out_bits: int, index_bits: int = 16) -> tuple[np.ndarray, dict[str, float]]:
    """A table for ``y = fn(x)`` on codes: ``lut[idx + offset]`` with ``idx = round_half_up(q / 2**k)``.

    ``k = max(0, in_bits - index_bits)``: inputs wider than ``index_bits`` index the table by their
    top bits (a 16-bit gate pre-activation reads a 1023-entry table with ``index_bits=10``);
    ``entry = sat(round_half_up(fn(idx * 2**k * in_scale) / out_scale))``.

    Returns:
        ``(table int16/int32, info)``; ``info`` has ``shift`` (k), ``offset``, and the table's worst
        error against the exact function over **every input code** (index truncation included), in
        real units and output codes, counted where the exact value lies inside the output range
        (``clipped_codes`` counts the others: inputs beyond the calibrated range, e.g. positive
        arguments of SARNN's ``exp(-d²)``, which saturate).
    """
    qi, qo = qmax(in_bits), qmax(out_bits)
    k = max(0, in_bits - index_bits)
    offset = (qi + (1 << k >> 1)) >> k if k else qi
    idx = np.arange(-offset, offset + 1, dtype=np.int64)

    def lut_of(x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            exact = fn(x)
        return np.clip(np.floor(np.nan_to_num(exact / out_scale, posinf=qo, neginf=-qo) + 0.5), -qo, qo).astype(np.int64)

    table = lut_of(idx.astype(np.float64) * (1 << k) * in_scale)
    codes = np.arange(-qi, qi + 1, dtype=np.int64)
    with np.errstate(over="ignore"):
        exact = fn(codes.astype(np.float64) * in_scale)
    got = table[shift_right(codes, k, "nearest") + offset]
    inside = np.abs(exact) <= (qo + 0.5) * out_scale
    err = np.abs(got * out_scale - exact)[inside]
    dtype = np.int16 if out_bits <= 16 else np.int32
    return table.astype(dtype), {"entries": int(table.size), "bytes": int(table.size * np.dtype(dtype).itemsize),
                                 "shift": k, "offset": int(offset),
                                 "max_abs_error": float(err.max(initial=0.0)),
                                 "max_error_codes": float((err / out_scale).max(initial=0.0)),
                                 "clipped_codes": int(np.count_nonzero(~inside))}
