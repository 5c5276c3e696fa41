"""Training data: loading and checking an EIPL dataset, normalization, and input noise.

Dataset layout (EIPL, eipl-models.md §3.1)::

    DIR/train/images.npy   (N, T, H, W, 3) uint8, HWC, channel order as in dataset.json
    DIR/train/joints.npy   (N, T, D) float, raw units (rad for revolute joints)
    DIR/test/images.npy, DIR/test/joints.npy   same layout, same T, H, W and D
    DIR/joint_bounds.npy   (2, D): row 0 = per-joint min, row 1 = per-joint max
    DIR/dataset.json       optional: {"joint_names": [...], "rate_hz": 10.0, "channel_order": "rgb"}

Normalization is EIPL's with vmin 0 / vmax 1: image = pixel / 255, joint = (q - min) / (max - min).
SARNN frames are resized to the model size with :func:`eipl_trt.imaging.resize_bilinear`, the
same function the runtime uses on live frames.
Input noise lives in :mod:`eipl_trt.train.noise`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eipl_trt.errors import DatasetError
from eipl_trt.imaging import JointScaler, resize_bilinear

__all__ = [
    "DatasetError",
    "Split",
    "TrainData",
    "load_dataset",
    "to_tensors",
    "joint_tensor",
    "VMIN",
    "VMAX",
]

logger = logging.getLogger(__name__)

#: Normalized range of images and joints (every EIPL training config uses 0 / 1).
VMIN = 0.0
VMAX = 1.0
CNN_IM_SIZE = 128


@dataclass(frozen=True)
class Split:
    """One split at model resolution.

    Attributes:
        images: (N, T, H, W, 3) uint8 at the model input size.
        joints: (N, T, D) float32, normalized to [VMIN, VMAX].
        raw_joints: (N, T, D) float64, raw units (for metrics in rad).
        targets: (N, T, D) float32 normalized labels from ``targets.npy`` (a demonstrator's intended
            joints, :mod:`eipl_trt.bagio.labels`), or ``None``: the joints are their own labels.
    """

    images: np.ndarray
    joints: np.ndarray
    raw_joints: np.ndarray
    targets: np.ndarray | None = None

    @property
    def num_sequences(self) -> int:
        """N."""
        return int(self.images.shape[0])

    @property
    def seq_len(self) -> int:
        """T."""
        return int(self.images.shape[1])


@dataclass(frozen=True)
class TrainData:
    """A loaded, checked and normalized dataset."""

    path: Path
    train: Split
    test: Split
    scaler: JointScaler
    joint_names: tuple[str, ...]
    rate_hz: float
    channel_order: str
    source_size: tuple[int, int]
    image_size: tuple[int, int]
    joint_bounds: np.ndarray

    @property
    def joint_dim(self) -> int:
        """D."""
        return len(self.joint_names)


def _load_npy(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(
            f"missing {path} ({what}). A dataset directory holds train/ and test/ with images.npy and "
            f"joints.npy, plus joint_bounds.npy (EIPL layout); create it with the dataset tool first"
        )
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}. The file is corrupt or not a .npy array; regenerate it") from exc


def _read_meta(root: Path, joint_dim: int) -> tuple[tuple[str, ...], float, str]:
    from eipl_trt.bagio import read_dataset_meta

    meta = read_dataset_meta(root, joint_dim)
    names = meta.joint_names or tuple(f"joint_{i}" for i in range(joint_dim))
    return names, meta.rate_hz, meta.channel_order


def _check_split(root: Path, split: str, images: np.ndarray, joints: np.ndarray) -> None:
    where = root / split
    if images.ndim != 5 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise DatasetError(
            f"{where / 'images.npy'} must be a (N, T, H, W, 3) uint8 array (HWC frames 0..255), got "
            f"shape {images.shape} dtype {images.dtype}; convert with images.astype(np.uint8) / transpose to HWC"
        )
    if joints.ndim != 3 or not np.issubdtype(joints.dtype, np.floating):
        raise DatasetError(
            f"{where / 'joints.npy'} must be a (N, T, D) float array, got shape {joints.shape} dtype {joints.dtype}"
        )
    if images.shape[0] == 0 or images.shape[1] == 0:
        raise DatasetError(f"the {split} split in {where} is empty (images shape {images.shape}); add sequences to it")
    if images.shape[:2] != joints.shape[:2]:
        raise DatasetError(
            f"{where}: images have (N, T) = {images.shape[:2]} but joints have {joints.shape[:2]}; every frame "
            f"needs one joint vector"
        )
    if not np.all(np.isfinite(joints)):
        raise DatasetError(f"{where / 'joints.npy'} contains NaN or Inf; clean the recording before training")


def _check_bounds(root: Path, bounds: np.ndarray, joint_dim: int) -> None:
    path = root / "joint_bounds.npy"
    if bounds.ndim != 2 or bounds.shape != (2, joint_dim):
        raise DatasetError(
            f"{path} must have shape (2, {joint_dim}) (min row, max row for {joint_dim} joints), got {bounds.shape}"
        )
    if not np.all(np.isfinite(bounds)):
        raise DatasetError(f"{path} contains NaN or Inf")
    flat = np.nonzero(~(bounds[1] > bounds[0]))[0]
    if flat.size:
        raise DatasetError(
            f"{path}: joints {flat.tolist()} have max <= min; min-max normalization would divide by zero. "
            f"Widen them (e.g. min - 0.01 and max + 0.01 for a joint that never moves)"
        )


def _resize_split(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if images.shape[2:4] == size:
        return images
    n, t = images.shape[:2]
    out = np.empty((n, t, size[0], size[1], 3), dtype=np.uint8)
    for i in range(n):
        for j in range(t):
            out[i, j] = resize_bilinear(images[i, j], size)
    return out


def load_dataset(data_dir: str | Path, model: str, im_size: int = 64) -> TrainData:
    """Load and check an EIPL dataset for ``model``.

    Args:
        data_dir: the dataset directory (layout in the module docstring).
        model: ``"sarnn"``, ``"cnnrnn"`` or ``"cnnrnnln"``.
        im_size: SARNN input size in px (frames are resized when they differ); CNN models need
            128 px frames and ignore this.

    Returns:
        The dataset with images at model size and joints normalized to [VMIN, VMAX].

    Raises:
        DatasetError: missing files, wrong shapes or dtypes, inconsistent splits, bad joint
            bounds or metadata, or frames of the wrong size for a CNN model.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError(f"dataset directory {root} does not exist; pass --data DIR with train/, test/ and joint_bounds.npy")
    bounds = _load_npy(root / "joint_bounds.npy", "per-joint min and max rows").astype(np.float64)
    splits = _load_splits(root)
    (tr_img, tr_q), _ = splits["train"], splits["test"]
    joint_dim = int(tr_q.shape[2])
    _check_bounds(root, bounds, joint_dim)
    names, rate_hz, order = _read_meta(root, joint_dim)
    source = (int(tr_img.shape[2]), int(tr_img.shape[3]))
    size = _model_size(root, model, im_size, tr_img.shape, source)
    scaler = JointScaler(bounds[0], bounds[1], VMIN, VMAX)
    started = time.perf_counter()
    result = {}
    for split, (images, joints) in splits.items():
        resized = _resize_split(images, size)
        targets = _load_targets(root, split, joints)
        result[split] = Split(resized, scaler.normalize(joints), joints.astype(np.float64),
                              None if targets is None else scaler.normalize(targets))
    if source != size:
        logger.info("resized %s frames %dx%d -> %dx%d px in %.1f s", root, *source, *size, time.perf_counter() - started)
    return TrainData(path=root.resolve(), train=result["train"], test=result["test"], scaler=scaler, joint_names=names,
                     rate_hz=rate_hz, channel_order=order, source_size=source, image_size=size, joint_bounds=bounds)


def _load_splits(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The train and test splits' frames and joints, checked alike."""
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in ("train", "test"):
        images = _load_npy(root / split / "images.npy", f"{split} frames (N, T, H, W, 3) uint8")
        joints = _load_npy(root / split / "joints.npy", f"{split} joints (N, T, D) float")
        _check_split(root, split, images, joints)
        splits[split] = (images, joints)
    (tr_img, tr_q), (te_img, te_q) = splits["train"], splits["test"]
    if tr_img.shape[1:] != te_img.shape[1:] or tr_q.shape[1:] != te_q.shape[1:]:
        raise DatasetError(
            f"train and test splits in {root} differ in (T, H, W, C) / D: images {tr_img.shape[1:]} vs "
            f"{te_img.shape[1:]}, joints {tr_q.shape[1:]} vs {te_q.shape[1:]}; pad both to the same T (EIPL "
            f"repeats the last frame) and use one image size"
        )
    return splits


def _model_size(root: Path, model: str, im_size: int, shape: tuple[int, ...], source: tuple[int, int]) -> tuple[int, int]:
    """The model's input size for frames of ``source`` px in sequences of ``shape`` (N, T, H, W, 3)."""
    if model == "sarnn":
        if shape[1] < 3:
            raise DatasetError(f"SARNN needs sequences of at least 3 frames for its point loss; {root} has T={shape[1]}")
        size = (int(im_size), int(im_size))
    else:
        size = (CNN_IM_SIZE, CNN_IM_SIZE)
        if source != size:
            raise DatasetError(
                f"{model.upper()} needs 128x128 px frames (its encoder flattens an 8x4x4 map) but {root} has "
                f"{source[0]}x{source[1]} px; remake the dataset at 128 px, or train sarnn with --im-size"
            )
    if shape[1] < 2:
        raise DatasetError(f"sequences in {root} have T={shape[1]}; training predicts the next frame, so T >= 2")
    return size


def _load_targets(root: Path, split: str, joints: np.ndarray) -> np.ndarray | None:
    """``<split>/targets.npy`` if present (same shape as the joints), else ``None``."""
    path = root / split / "targets.npy"
    if not path.exists():
        return None
    targets = _load_npy(path, f"{split} labels (N, T, D) float, the shape of joints.npy")
    if targets.shape != joints.shape or not np.issubdtype(targets.dtype, np.floating):
        raise DatasetError(f"{path} has shape {targets.shape} ({targets.dtype}); it must match joints.npy "
                           f"{joints.shape} (float). Remake the dataset with eipl-trt dataset --target-topic")
    return targets


def label_tensor(split: Split, index: np.ndarray | slice, device: torch.device | str | None = None) -> torch.Tensor:
    """The joint labels (B, T, D) of the sequences ``index``: the targets where the dataset has them, else the joints."""
    if split.targets is None:
        return joint_tensor(split, index, device)
    labels = torch.from_numpy(np.ascontiguousarray(split.targets[index]))
    return labels if device is None else labels.to(device)


def to_tensors(
    split: Split, index: np.ndarray | slice, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean model inputs for the sequences ``index`` of ``split``, on ``device`` (default: the CPU).

    The frames travel to the device as uint8 and are converted there (4x less to copy).

    Returns:
        ``(images (B, T, 3, H, W) float32 in [0, 1], joints (B, T, D) float32 normalized)``.
    """
    images = torch.from_numpy(np.ascontiguousarray(split.images[index]))
    if device is not None:
        images = images.to(device)
    images = images.permute(0, 1, 4, 2, 3).to(torch.float32).div_(255.0).contiguous()
    return images, joint_tensor(split, index, device)


def joint_tensor(split: Split, index: np.ndarray | slice, device: torch.device | str | None = None) -> torch.Tensor:
    """Clean normalized joints (B, T, D) float32 of the sequences ``index`` of ``split`` (no images loaded)."""
    joints = torch.from_numpy(np.ascontiguousarray(split.joints[index]))
    return joints if device is None else joints.to(device)
