"""EIPL dataset directories as episodes, and :func:`load_episodes` for either source (see :mod:`eipl_trt.bagio`)."""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from eipl_trt.bagio.episodes import Episode, resample, select_joints
from eipl_trt.bagio.streams import read_bag
from eipl_trt.errors import DatasetError, InputError

__all__ = ["DatasetMeta", "read_dataset_meta", "load_dataset_dir", "load_episodes"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetMeta:
    """What ``dataset.json`` says about an EIPL dataset directory.

    Attributes:
        joint_names: one unique name per joint column, or None when the file names none.
        rate_hz: sampling rate (Hz; 10 when not given, as in EIPL's datasets).
        channel_order: "rgb" or "bgr" ("rgb" when not given; EIPL's AIREC data is bgr).
    """

    joint_names: tuple[str, ...] | None
    rate_hz: float
    channel_order: str


def read_dataset_meta(root: str | os.PathLike[str], joint_dim: int) -> DatasetMeta:
    """Read and check ``root/dataset.json`` (optional) for a dataset with ``joint_dim`` joint columns.

    Raises:
        DatasetError: unparseable file, a name count that is not ``joint_dim`` or repeats, a rate
            that is not a positive number, an unknown channel order.
    """
    path = Path(root) / "dataset.json"
    if not path.is_file():
        logger.warning("%s not found: no joint names, 10 Hz, channel order rgb (EIPL's AIREC data is bgr)", path)
        return DatasetMeta(None, 10.0, "rgb")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot parse {path}: {exc}. Fix or delete it") from exc
    if not isinstance(meta, dict):
        raise DatasetError(f"{path} must hold a JSON object with joint_names, rate_hz and channel_order")
    names = tuple(str(n) for n in meta["joint_names"]) if meta.get("joint_names") else None
    if names is not None and (len(names) != joint_dim or len(set(names)) != joint_dim):
        raise DatasetError(
            f"{path} lists {len(names)} joint_names {list(names)} but the joints have {joint_dim} "
            f"columns (or names repeat); give one unique name per joint column"
        )
    try:
        rate_hz = float(meta.get("rate_hz", 10.0))
    except (TypeError, ValueError):
        rate_hz = math.nan
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise DatasetError(f"{path}: rate_hz {meta.get('rate_hz')!r} must be a positive number (Hz)")
    order = str(meta.get("channel_order", "rgb")).lower()
    if order not in ("rgb", "bgr"):
        raise DatasetError(f"{path}: channel_order {order!r} must be 'rgb' or 'bgr'")
    return DatasetMeta(names, rate_hz, order)


def load_dataset_dir(path: str | os.PathLike[str], split: str = "test", *,
                     joint_names: Sequence[str] | None = None) -> list[Episode]:
    """Read one split of an EIPL dataset directory as episodes.

    Args:
        path: directory with ``{split}/images.npy`` (N, T, H, W, 3) uint8,
            ``{split}/joints.npy`` (N, T, D), ``joint_bounds.npy`` (2, D) and optionally
            ``dataset.json`` (``joint_names``, ``rate_hz`` (default 10), ``channel_order``
            (default "rgb")).
        split: "train" or "test".
        joint_names: joints to keep, in this order; None keeps all. A dataset whose dataset.json
            names no joints is taken to be in this order when the column count matches.

    Returns:
        N episodes with stamps ``arange(T) / rate_hz``.

    Raises:
        InputError: missing files, inconsistent shapes or dtypes, unknown joint names
            (DatasetError for a bad dataset.json).
    """
    root = Path(path)
    files = {n: root / split / f"{n}.npy" for n in ("images", "joints")}
    missing = [str(f) for f in (*files.values(), root / "joint_bounds.npy") if not f.is_file()]
    if missing:
        raise InputError(f"{root} is not an EIPL dataset directory: missing {', '.join(missing)}")
    try:
        images = np.load(files["images"], mmap_mode="r")
        joints = np.load(files["joints"])
        bounds = np.load(root / "joint_bounds.npy")
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the dataset arrays in {root}: {exc}") from exc
    if images.dtype != np.uint8 or images.ndim != 5 or images.shape[-1] != 3:
        raise InputError(f"{files['images']} must be (N, T, H, W, 3) uint8, got {images.shape} {images.dtype}")
    if joints.ndim != 3 or joints.shape[:2] != images.shape[:2] or bounds.shape != (2, joints.shape[2]):
        raise InputError(f"inconsistent shapes in {root}: images {images.shape}, joints {joints.shape}, "
                         f"joint_bounds {bounds.shape}; expected (N, T, ...), (N, T, D) and (2, D)")
    meta = read_dataset_meta(root, joints.shape[2])
    names = meta.joint_names or ()
    if joint_names is not None and not names:
        if len(joint_names) != joints.shape[2]:
            raise DatasetError(
                f"{root} names no joints (no joint_names in dataset.json) and has {joints.shape[2]} joint "
                f"columns, but {len(joint_names)} joints were asked for; it does not belong to this model"
            )
        logger.warning("%s names no joints; assuming its %d columns are %s in this order",
                       root, len(joint_names), ", ".join(joint_names))
        names = tuple(joint_names)
    if joint_names is not None:
        n, t, d = joints.shape
        joints = select_joints(names, joints.reshape(n * t, d), joint_names).reshape(n, t, -1)
        names = tuple(joint_names)
    rate, order = meta.rate_hz, meta.channel_order
    stamps = np.arange(images.shape[1]) / rate
    return [
        Episode(images=np.array(images[i]), channel_order=order, encoding=f"{order}8",
                joints=joints[i].astype(np.float64), joint_names=names, stamps=stamps, rate_hz=rate,
                source=f"{root.name}/{split} episode {i}")
        for i in range(images.shape[0])
    ]


def load_episodes(path: str | os.PathLike[str], *, split: str = "test", rate_hz: float = 10.0,
                  joint_names: Sequence[str] | None = None, image_topic: str | None = None,
                  joint_topic: str | None = None, channel_order: str | None = None) -> list[Episode]:
    """Episodes from a rosbag2 (resampled at ``rate_hz``) or an EIPL dataset directory (``split``).

    Raises:
        InputError: ``path`` is neither, or reading it fails (see :func:`read_bag`,
            :func:`load_dataset_dir`).
    """
    p = Path(path)
    if (p / "joint_bounds.npy").is_file() or (p / split / "images.npy").is_file():
        return load_dataset_dir(p, split, joint_names=joint_names)
    streams = read_bag(p, image_topic=image_topic, joint_topic=joint_topic, channel_order=channel_order)
    return resample(streams, rate_hz, joint_names=joint_names)
