"""Concatenate the train splits of several EIPL dataset directories into one (``eipl-trt dataset merge``).

The test split, ``joint_bounds.npy`` and the metadata come from the first directory: the bounds
define a model's joint normalization, so data added for fine-tuning must keep those of the model's
own dataset. Every directory must have the same joint count, and the same image size unless ``--image-size``
resizes every frame to one (with :func:`eipl_trt.imaging.resize_bilinear`, the resize training applies: a
128 px in-process dataset and a 64 px one made from a bag then train alike). Sequences of different
lengths (a DAgger takeover round's episodes start where the expert took over) are padded to the
longest by repeating their last step, as ``eipl-trt dataset`` pads an episode, the test split too.
``dataset.json`` records the sources (``merged_from``) and the train episode count. Where a source has
labels (``targets.npy``, a demonstrator's intent) the merged train split has them too, the joints standing
in as labels for sources without. The directory
is built beside ``out``, fsynced and renamed into place, so it appears complete or not at all.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eipl_trt.common.atomic import replace_atomic, write_json_atomic
from eipl_trt.errors import EipltrtError, InputError

__all__ = ["merge_datasets"]

log = logging.getLogger(__name__)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)


def _train_split(source: Path) -> tuple[np.ndarray, np.ndarray]:
    missing = [n for n in ("train/images.npy", "train/joints.npy") if not (source / n).is_file()]
    if missing:
        raise InputError(f"{source} is not an EIPL dataset directory: {', '.join(missing)} missing")
    return np.load(source / "train" / "images.npy", mmap_mode="r"), np.load(source / "train" / "joints.npy")


def _padded(array: np.ndarray, steps: int) -> np.ndarray:
    """``array`` (N, T, ...) with its last step repeated up to ``steps`` (EIPL's padding)."""
    if array.shape[1] >= steps:
        return np.asarray(array)
    return np.concatenate([array, np.repeat(array[:, -1:], steps - array.shape[1], axis=1)], axis=1)


def _resized(images: np.ndarray, size: int | None) -> np.ndarray:
    """(N, T, H, W, C) frames at ``size`` x ``size`` px (unchanged when ``size`` is None or already so)."""
    if size is None or images.shape[2:4] == (size, size):
        return images
    from eipl_trt.imaging import resize_bilinear

    return np.stack([np.stack([resize_bilinear(frame, (size, size)) for frame in episode]) for episode in images])


def _write_test(first: Path, out: Path, steps: int, size: int | None = None) -> None:
    """The first source's test split, each (N, T, ...) array padded to ``steps``, its frames at ``size``."""
    out.mkdir()
    for item in sorted((first / "test").iterdir()):
        if item.suffix == ".npy":
            array = _resized(np.load(item), size) if item.name == "images.npy" else np.load(item)
            _save_npy(out / item.name, _padded(array, steps) if array.ndim >= 2 else array)
        elif item.is_file():
            shutil.copy2(item, out / item.name)


def merge_datasets(sources: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                   image_size: int | None = None) -> dict[str, Any]:
    """Write ``out``: the train splits of ``sources`` one after the other, the first's test split and bounds.

    Args:
        sources: EIPL dataset directories; the first gives ``test/``, ``joint_bounds.npy`` and
            ``dataset.json``.
        out: the directory to create (an existing one must be empty).
        image_size: resize every frame to this many px square; None = the sources must agree.

    Returns:
        The dataset.json written.

    Raises:
        InputError: no source, a source that is not a dataset, train splits of different
            shapes, or ``out`` exists and is not an empty directory.
        EipltrtError: ``out`` could not be written.
    """
    paths = [Path(s) for s in sources]
    target = Path(out)
    if not paths:
        raise InputError("give at least one dataset directory to merge")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"{target} already exists; choose another --out (a merged dataset never replaces one)")
    first = paths[0]
    for name in ("test", "joint_bounds.npy", "dataset.json"):
        if not (first / name).exists():
            raise InputError(f"{first} has no {name}; the first directory gives the test split, bounds and metadata")
    if image_size is not None and image_size < 8:
        raise InputError(f"--image-size must be at least 8 px, got {image_size}")
    splits = [_train_split(p) for p in paths]
    shapes = {(images.shape[4:] if image_size else images.shape[2:], joints.shape[2:]) for images, joints in splits}
    if len(shapes) != 1:
        raise InputError(f"the train splits differ in ({'C' if image_size else 'H, W, C'}) / (D,): {sorted(shapes)}; "
                         "give --image-size to resize the frames to one size, or regenerate them alike (the same joints)")
    lengths = {int(np.load(first / "test" / "joints.npy", mmap_mode="r").shape[1])}
    lengths |= {int(joints.shape[1]) for _, joints in splits}
    steps = max(lengths)
    if len(lengths) > 1:
        log.warning("sequences of %s steps are padded to %d by repeating their last step", sorted(lengths), steps)
    meta = json.loads((first / "dataset.json").read_text(encoding="utf-8"))
    meta["episodes"] = {"train": int(sum(len(joints) for _, joints in splits)), "test": meta["episodes"]["test"]}
    if "episode_seeds" in meta:  # train seeds are per source (in each source's dataset.json); test is the first's
        meta["episode_seeds"] = {"test": meta["episode_seeds"].get("test", [])}
    if image_size is not None:
        meta["image_size"] = [int(image_size), int(image_size)]
    meta["merged_from"] = [{"path": str(p), "train_episodes": len(joints)} for p, (_, joints) in zip(paths, splits)]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private
        (tmp / "train").mkdir()
        _save_npy(tmp / "train" / "images.npy", np.concatenate([_padded(_resized(images, image_size), steps)
                                                                  for images, _ in splits]))
        _save_npy(tmp / "train" / "joints.npy",
                  np.concatenate([_padded(joints, steps) for _, joints in splits]).astype(np.float32))
        if any((p / "train" / "targets.npy").is_file() for p in paths):  # labels: each source's, else its joints
            _save_npy(tmp / "train" / "targets.npy", np.concatenate(
                [_padded(np.load(p / "train" / "targets.npy") if (p / "train" / "targets.npy").is_file() else joints,
                         steps) for p, (_, joints) in zip(paths, splits)]).astype(np.float32))
        _write_test(first, tmp / "test", steps, image_size)
        shutil.copy2(first / "joint_bounds.npy", tmp / "joint_bounds.npy")
        write_json_atomic(tmp / "dataset.json", meta)
        if target.exists():
            target.rmdir()  # empty (checked above)
        replace_atomic(tmp, target)
    except OSError as exc:
        raise EipltrtError(f"could not write the dataset {target}: {exc}; check free disk space and permissions") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta
