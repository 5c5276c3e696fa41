"""Joint names and joint bounds for export: EIPL's ``joint_bounds.npy`` layout, checked early.

The bounds are EIPL's (2, D) array: row 0 holds each joint's minimum, row 1 its maximum, in raw
units (rad for revolute joints). Min-max normalization divides by ``max - min``, so a joint
that never moved in the training data (zero width) is refused with a fix, never silently used.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eipl_trt.errors import ModelError

__all__ = ["resolve_joint_names", "load_joint_bounds", "validate_joint_bounds"]


def resolve_joint_names(names: Sequence[str] | None, joint_dim: int) -> tuple[str, ...]:
    """Joint names in model order; ``joint_0 .. joint_{D-1}`` when ``names`` is ``None``.

    Raises:
        ModelError: wrong count, empty or duplicate names.
    """
    if names is None:
        return tuple(f"joint_{i}" for i in range(joint_dim))
    out = tuple(str(n).strip() for n in names)
    if len(out) != joint_dim:
        raise ModelError(
            f"{len(out)} joint names given but the model has {joint_dim} joints; pass exactly "
            f"{joint_dim} comma-separated names in model order (or none for joint_0..joint_{joint_dim - 1})"
        )
    if any(not n for n in out):
        raise ModelError(f"joint names must not be empty: {list(out)}")
    dupes = sorted(n for n, count in Counter(out).items() if count > 1)
    if dupes:
        raise ModelError(f"joint names must be unique; repeated: {dupes}")
    return out


def load_joint_bounds(path: str | os.PathLike[str]) -> np.ndarray:
    """Read EIPL's ``joint_bounds.npy`` ((2, D): row 0 = min, row 1 = max) as float64.

    Raises:
        ModelError: missing or unreadable file (validation is :func:`validate_joint_bounds`).
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"joint bounds file {p} does not exist; pass the joint_bounds.npy of the training data")
    try:
        return np.asarray(np.load(p, allow_pickle=False), dtype=np.float64)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"cannot read joint bounds {p} as a numeric .npy array: {exc}") from exc


def validate_joint_bounds(
    bounds: Any, joint_dim: int | None = None, joint_names: Sequence[str] | None = None
) -> np.ndarray:
    """Check joint bounds and return them as a (2, D) float64 array.

    Args:
        bounds: array-like (2, D): row 0 per-joint minimum, row 1 maximum (rad for revolute joints).
        joint_dim: the model's D, if known.
        joint_names: names used in messages.

    Raises:
        ModelError: wrong shape, non-finite values, D mismatch, or ``max <= min`` for a joint.
    """
    try:
        arr = np.asarray(bounds, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"joint bounds must be a numeric (2, D) array: {exc}") from exc
    if arr.ndim != 2 or arr.shape[0] != 2:
        hint = " (it looks transposed; EIPL's layout is (2, D))" if arr.ndim == 2 and arr.shape[1] == 2 else ""
        raise ModelError(f"joint bounds must have shape (2, D) (row 0 = min, row 1 = max), got {arr.shape}{hint}")
    if joint_dim is not None and arr.shape[1] != joint_dim:
        raise ModelError(
            f"joint bounds cover {arr.shape[1]} joints but the model has {joint_dim}; use the "
            f"joint_bounds.npy of the dataset the checkpoint was trained on"
        )
    if not np.all(np.isfinite(arr)):
        raise ModelError("joint bounds contain NaN or Inf; recompute joint_bounds.npy from the training data")
    bad = np.flatnonzero(arr[1] <= arr[0])
    if bad.size:
        names = joint_names or [f"joint_{i}" for i in range(arr.shape[1])]
        listed = ", ".join(f"{names[i]} (index {i}): min={arr[0, i]:g} max={arr[1, i]:g}" for i in bad)
        raise ModelError(
            f"joint bounds have zero width or max < min for {listed}. Min-max normalization would "
            f"divide by zero. A joint that never moved in the training data needs widened bounds, "
            f"e.g. min-0.01 and max+0.01, saved back to joint_bounds.npy (the same bounds the model "
            f"was trained with)"
        )
    return arr
