"""Datasets derived from another one: new training sequences beside its test split and joint bounds.

Used by ``eipl-trt sim perturbed`` and ``eipl-trt sim recovery`` (:mod:`eipl_trt.sim.demos`): the test split and ``joint_bounds.npy`` come from the ``base``
dataset unchanged, since the bounds define the normalization of the model the data is for. The
directory is built beside ``out`` and moved into place when complete, as ``eipl-trt sim`` does.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from eipl_trt.common.atomic import write_json_atomic
from eipl_trt.errors import InputError
from eipl_trt.sim.record import _install, _save_npy, staging_dir

__all__ = ["write_derived_dataset"]


def write_derived_dataset(out: Path, base: Path, train_images: np.ndarray, train_joints: np.ndarray,
                          meta: Mapping[str, Any]) -> None:
    """Write ``out`` = ``train_images`` / ``train_joints`` as its train split, ``base``'s test split and
    bounds, and ``meta`` as ``dataset.json``, atomically.

    Raises:
        InputError: ``out`` exists and is not an empty directory.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} already exists; choose another --out (a derived dataset never replaces one)")
    with staging_dir(out) as tmp:
        (tmp / "train").mkdir()
        _save_npy(tmp / "train" / "images.npy", train_images)
        _save_npy(tmp / "train" / "joints.npy", train_joints)
        shutil.copytree(base / "test", tmp / "test")
        shutil.copy2(base / "joint_bounds.npy", tmp / "joint_bounds.npy")
        write_json_atomic(tmp / "dataset.json", dict(meta))
        _install(tmp, out)
