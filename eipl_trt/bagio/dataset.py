"""Your robot's rosbags -> an EIPL dataset directory that ``eipl-trt train`` reads (no ROS needed).

A lab records demonstrations with ``ros2 bag record`` (a camera, raw or compressed, and
``joint_states`` at hundreds of Hz). :func:`bags_to_dataset` turns them into EIPL's layout through
the very code ``eipl-trt evaluate`` and the node use, so training and serving cannot drift apart:

* frames are decoded by :mod:`eipl_trt.camera` (the node's decoder: JPEG/PNG, YUV, Bayer, 16 bit),
  put in one channel order and resized with :func:`eipl_trt.imaging.resize_bilinear` (the
  predictor's resize), all inside :func:`eipl_trt.bagio.read_bag`;
* episodes are cut and sampled at the control rate by :func:`eipl_trt.bagio.resample` (what
  ``evaluate`` replays): at each tick the latest frame and the joints interpolated in time; an
  episode ends at a pause longer than ``gap_s`` or at a message on a marker topic.

Layout written (what :func:`eipl_trt.train.data.load_dataset` and ``evaluate`` read)::

    OUT/train/images.npy   (N, T, S, S, 3) uint8 frames in dataset.json's channel order
    OUT/train/joints.npy   (N, T, D) float32 joint positions (rad or m), model order
    OUT/test/...           the same for the last --test-episodes episodes (in recording order)
    OUT/joint_bounds.npy   (2, D) float32 min and max over all frames, each widened by
                           5% of the range + 0.01 (as eipl-trt sim does)
    OUT/dataset.json       joint names, rate, image size, channel order, episode lengths and sources

Every sequence has the same T (EIPL's training batches need it): shorter episodes are padded
by repeating their last frame and joints, as EIPL's own datasets are; dataset.json keeps each
episode's true length. The directory is built beside ``OUT``, fsynced and renamed into place, so
an interrupted run leaves the previous dataset or none, never a partial one.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from eipl_trt import __version__
from eipl_trt.bagio import Episode, read_bag, resample
from eipl_trt.common.atomic import fsync_dir, replace_atomic, write_json_atomic
from eipl_trt.errors import EipltrtError, InputError

__all__ = ["IMAGE_SIZES", "episodes_from_bags", "pad_episodes", "joint_bounds", "write_dataset", "bags_to_dataset"]

logger = logging.getLogger(__name__)

#: Frame sides the models take: SARNN's 64 px (also trains from 128) and the CNN models' 128 px.
IMAGE_SIZES = (64, 128)


def episodes_from_bags(
    bags: Sequence[str | os.PathLike[str]],
    *,
    rate_hz: float = 10.0,
    image_size: int = 128,
    joint_names: Sequence[str] | None = None,
    channel_order: str | None = None,
    image_topic: str | None = None,
    joint_topic: str | None = None,
    marker_topic: str | None = None,
    gap_s: float | None = None,
    min_steps: int = 3,
    target_topic: str | None = None,
    start_topic: str | None = None,
) -> tuple[list[Episode], dict[str, str]]:
    """Read and resample every bag, in the order given.

    Args:
        bags: rosbag2 directories.
        rate_hz: control rate (Hz) the model will run at.
        image_size: square frame side S (px).
        joint_names: joints to keep, in model order; None = every joint of the first bag's
            joint_states, in order of first appearance.
        channel_order: "rgb" or "bgr"; None = the first bag's native order (bgr for JPEG/PNG).
        image_topic, joint_topic, marker_topic, gap_s: as in :func:`~eipl_trt.bagio.read_bag` /
            :func:`~eipl_trt.bagio.resample` (the same topics in every bag).
        min_steps: episodes with fewer ticks are dropped with a warning.
        target_topic: a JointState topic whose positions become the labels (:mod:`eipl_trt.bagio.labels`).
        start_topic: episodes start at this topic's first message inside them; those without one are dropped.

    Returns:
        The episodes, and the topics read (``image_topic``, ``joint_topic``): the ones found in
        the first bag are read from every later bag.

    Raises:
        InputError: a bag that cannot be used (the message names it and says why).
    """
    if not bags:
        raise InputError("no bag given; pass --bag with one or more rosbag2 directories")
    if image_size not in IMAGE_SIZES:
        raise InputError(f"image size {image_size} px is not one the models take; use "
                         f"{' or '.join(map(str, IMAGE_SIZES))} (64 for SARNN, 128 for CNNRNN/CNNRNNLN)")
    names = tuple(joint_names) if joint_names else None
    episodes: list[Episode] = []
    for bag in bags:
        try:
            streams = read_bag(bag, image_topic=image_topic, joint_topic=joint_topic, channel_order=channel_order,
                               image_size=(image_size, image_size), marker_topic=marker_topic)
            channel_order, image_topic, joint_topic = streams.channel_order, streams.image_topic, streams.joint_topic
            names = names or streams.joint_names
            found = resample(streams, rate_hz, joint_names=names, gap_s=gap_s, min_samples=min_steps)
            found = _labelled(bag, found, names, target_topic, start_topic, min_steps)
        except InputError as exc:
            raise InputError(f"cannot use bag {bag}: {exc}") from None
        logger.info("%s: %d episode(s) of %s steps at %g Hz (images from %s, joints from %s)", bag, len(found),
                    ", ".join(str(len(e)) for e in found), rate_hz, streams.image_topic, streams.joint_topic)
        episodes.extend(found)
    return episodes, {"image_topic": str(image_topic), "joint_topic": str(joint_topic)}


def _labelled(bag: str | os.PathLike[str], episodes: list[Episode], names: Sequence[str], target_topic: str | None,
              start_topic: str | None, min_steps: int) -> list[Episode]:
    """Attach the target topic's labels and cut the episodes at the start topic (either optional)."""
    from eipl_trt.bagio import labels

    if target_topic:
        episodes = labels.with_targets(episodes, labels.read_stamped_joints(bag, target_topic, names))
    if start_topic:
        episodes = labels.from_starts(episodes, labels.read_start_stamps(bag, start_topic), min_steps)
    return episodes


def pad_episodes(episodes: Sequence[Episode]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Stack episodes into ``(N, T, S, S, 3)`` uint8 and ``(N, T, D)`` float32, T = the longest.

    Shorter episodes repeat their last frame and joints (EIPL's padding). Returns the true lengths too.
    """
    lengths = [len(e) for e in episodes]
    t = max(lengths)
    images = np.empty((len(episodes), t, *episodes[0].images.shape[1:]), np.uint8)
    joints = np.empty((len(episodes), t, episodes[0].joints.shape[1]), np.float32)
    for i, e in enumerate(episodes):
        n = len(e)
        images[i, :n], images[i, n:] = e.images, e.images[-1]
        joints[i, :n], joints[i, n:] = e.joints, e.joints[-1]
    return images, joints, lengths


def _pad_targets(episodes: Sequence[Episode], joints: np.ndarray) -> np.ndarray:
    """``(N, T, D)`` float32 labels: each episode's targets (its joints where it has none), padded like the joints."""
    out = joints.copy()
    for i, e in enumerate(episodes):
        if e.targets is not None:
            out[i, :len(e)], out[i, len(e):] = e.targets, e.targets[-1]
    return out


def joint_bounds(joints: np.ndarray, limits: np.ndarray | None = None) -> np.ndarray:
    """``(2, D)`` float32 min/max of ``(..., D)`` joints, each side widened by 5% of the range + 0.01.

    The margin is the one ``eipl-trt sim`` uses, so a joint that never moves still gets a nonzero
    width and commands near the recorded extremes are not clipped by the normalization.

    Args:
        joints: ``(..., D)`` joint positions.
        limits: optional ``(D, 2)`` joint limits (lower, upper): the margin does not go beyond them
            (as the simulator's datasets do with its arm's limits).
    """
    flat = np.asarray(joints, np.float64).reshape(-1, np.shape(joints)[-1])
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    margin = 0.05 * (hi - lo) + 0.01
    if limits is None:
        return np.stack([lo - margin, hi + margin]).astype(np.float32)
    lim = np.asarray(limits, np.float64)
    if lim.shape != (flat.shape[1], 2):
        raise InputError(f"joint limits must be ({flat.shape[1]}, 2) (lower, upper per joint), got {lim.shape}")
    return np.stack([np.minimum(lo, np.maximum(lo - margin, lim[:, 0])),
                     np.maximum(hi, np.minimum(hi + margin, lim[:, 1]))]).astype(np.float32)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)


def write_dataset(
    out: str | os.PathLike[str],
    episodes: Sequence[Episode],
    *,
    test_episodes: int | None = None,
    overwrite: bool = False,
    joint_limits: np.ndarray | None = None,
    extra: dict[str, Any] | None = None,
    bounds: np.ndarray | None = None,
) -> dict[str, Any]:
    """Write ``episodes`` as an EIPL dataset directory ``out`` (atomically).

    Args:
        out: directory to create.
        episodes: from :func:`episodes_from_bags` (same frame size, joints and channel order).
        test_episodes: how many of the last episodes form the test split; None = 20% (at least 1).
        overwrite: replace an existing non-empty ``out``.
        joint_limits: optional ``(D, 2)`` limits the bounds' margin stays within (:func:`joint_bounds`).
        extra: more entries for dataset.json (e.g. the bags and topics read).
        bounds: ``(2, D)`` joint bounds to write instead of the data's (to fine-tune a model, whose
            normalization they are); with labels, ``targets.npy`` is written beside ``joints.npy``.

    Returns:
        The dataset.json contents.

    Raises:
        InputError: too few episodes for the split, or ``out`` exists.
    """
    target = Path(out)
    n = len(episodes)
    n_test = _test_split(target, n, test_episodes, overwrite)
    images, joints, lengths = pad_episodes(episodes)
    targets = _pad_targets(episodes, joints) if any(e.targets is not None for e in episodes) else None
    if max(lengths) != min(lengths):
        logger.warning("episodes have %d..%d steps; shorter ones are padded to %d by repeating their last step",
                       min(lengths), max(lengths), max(lengths))
    splits = {"train": slice(0, n - n_test), "test": slice(n - n_test, n)}
    summary = _summary(episodes, images, lengths, splits, extra)

    def fill(tmp: Path) -> None:
        for split, sl in splits.items():
            (tmp / split).mkdir()
            _save_npy(tmp / split / "images.npy", images[sl])
            _save_npy(tmp / split / "joints.npy", joints[sl])
            if targets is not None:
                _save_npy(tmp / split / "targets.npy", targets[sl])
        _save_npy(tmp / "joint_bounds.npy", joint_bounds(joints, joint_limits) if bounds is None
                  else np.asarray(bounds, np.float32))
        write_json_atomic(tmp / "dataset.json", summary)

    _replace_dataset_dir(target, fill)
    logger.info("wrote %d train + %d test episodes of %d steps to %s", n - n_test, n_test, images.shape[1], target)
    return summary


def _test_split(target: Path, n: int, test_episodes: int | None, overwrite: bool) -> int:
    """How many of ``n`` episodes form the test split, once the split and ``target`` are usable (else InputError)."""
    n_test = max(1, round(0.2 * n)) if test_episodes is None else int(test_episodes)
    if n_test < 1 or n - n_test < 1:
        raise InputError(f"found {n} usable episode(s), but training needs at least 1 train and 1 test episode "
                         f"(--test-episodes {n_test}); record more demonstrations, or split long recordings "
                         f"with a marker topic or shorter pauses (--gap)")
    if target.exists() and not target.is_dir():
        raise InputError(f"{target} exists and is not a directory; choose another --out")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise InputError(f"{target} already exists and is not empty; pass --overwrite to replace it")
    return n_test


def _summary(episodes: Sequence[Episode], images: np.ndarray, lengths: list[int], splits: dict[str, slice],
             extra: dict[str, Any] | None) -> dict[str, Any]:
    """The contents of dataset.json."""
    first = episodes[0]
    return {
        "format": "eipl",
        "generator": "eipl-trt dataset",
        "eipl_trt_version": __version__,
        "joint_names": list(first.joint_names),
        "rate_hz": first.rate_hz,
        "steps": int(images.shape[1]),
        "image_size": [int(images.shape[2]), int(images.shape[3])],
        "channel_order": first.channel_order,
        "episodes": {s: sl.stop - sl.start for s, sl in splits.items()},
        "episode_lengths": {s: lengths[sl] for s, sl in splits.items()},
        "sources": {s: [e.source for e in episodes[sl]] for s, sl in splits.items()},
        **(extra or {}),
    }


def _replace_dataset_dir(target: Path, fill: Callable[[Path], None]) -> None:
    """Fill a fresh directory beside ``target`` with ``fill``, then put it in ``target``'s place (a previous
    dataset there is removed only once the new one is in place, and put back if that fails).

    Raises:
        EipltrtError: an OSError while writing or renaming (disk full, permissions).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    moved = False
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private
        fill(tmp)
        if target.exists():
            os.replace(target, old)
            moved = True
        try:
            replace_atomic(tmp, target)
        except OSError:
            if moved:
                os.replace(old, target)  # put the previous dataset back
                moved = False
            raise
    except OSError as exc:
        raise EipltrtError(f"could not write the dataset {target}: {exc}; check free disk space and "
                           f"permissions") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if moved:
            shutil.rmtree(old, ignore_errors=True)
            fsync_dir(target.parent)


def bags_to_dataset(
    bags: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    rate_hz: float = 10.0,
    image_size: int = 128,
    test_episodes: int | None = None,
    joint_names: Sequence[str] | None = None,
    channel_order: str | None = None,
    image_topic: str | None = None,
    joint_topic: str | None = None,
    marker_topic: str | None = None,
    gap_s: float | None = None,
    min_steps: int = 3,
    overwrite: bool = False,
    joint_limits: np.ndarray | None = None,
    target_topic: str | None = None,
    start_topic: str | None = None,
    bounds: np.ndarray | None = None,
) -> dict[str, Any]:
    """Bags -> EIPL dataset directory: :func:`episodes_from_bags` then :func:`write_dataset`.

    Returns:
        The dataset.json contents.

    Raises:
        InputError: a bag that cannot be used, too few episodes, or ``out`` exists.
    """
    episodes, topics = episodes_from_bags(
        bags, rate_hz=rate_hz, image_size=image_size, joint_names=joint_names, channel_order=channel_order,
        image_topic=image_topic, joint_topic=joint_topic, marker_topic=marker_topic, gap_s=gap_s, min_steps=min_steps,
        target_topic=target_topic, start_topic=start_topic)
    extra = {"bags": [str(b) for b in bags], **topics, "marker_topic": marker_topic,
             "gap_s": gap_s if gap_s is not None else max(1.0, 5.0 / rate_hz),
             "target_topic": target_topic, "start_topic": start_topic}
    return write_dataset(out, episodes, test_episodes=test_episodes, overwrite=overwrite, joint_limits=joint_limits,
                         extra=extra, bounds=bounds)
