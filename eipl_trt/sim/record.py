"""Record expert demonstrations in the Pusher scene as an EIPL dataset and a rosbag2.

Layout written by :func:`generate_dataset` (EIPL's, eipl-models.md §3.1)::

    OUT/train/images.npy   (N, T, S, S, 3) uint8 RGB camera frames at 10 Hz
    OUT/train/joints.npy   (N, T, 7) float32 joint positions (rad) at the frame times
    OUT/test/...           the same for the test split
    OUT/joint_bounds.npy   (2, 7) float32: row 0 min, row 1 max over train+test, widened by a
                           margin (within the joint limits)
    OUT/dataset.json       joint names, rate, image size, channel order, seeds, expert success, ...
    OUT/bag/               optional rosbag2 (MCAP) of the same episodes, joints at 50 Hz

Every episode runs exactly ``steps`` camera periods (the expert holds its final pose when done),
so no padding is needed. Episode ``i`` (train first, then test) is seeded with ``(seed, i)``. The
whole directory is built beside ``OUT`` and renamed into place, so an interrupted run leaves no
partial dataset.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from eipl_trt.common.atomic import fsync_dir, fsync_tree, write_json_atomic
from eipl_trt.common.progress import Progress
from eipl_trt.errors import InputError
from eipl_trt.sim.bagwrite import BagEpisode
from eipl_trt.sim.expert import ArmKinematics, ExpertConfig, PushExpert, sample_layout
from eipl_trt.sim.pusher import CONTROL_PERIOD_S, Layout, PusherScene

__all__ = ["RATE_HZ", "SUCCESS_RADIUS_M", "GENERATOR_VERSION", "EpisodeRecord", "record_episode", "generate_dataset"]

logger = logging.getLogger(__name__)

#: Camera and dataset rate (Hz), as in EIPL's datasets.
RATE_HZ = 10.0
#: An episode succeeds when the object's centre ends this close to the goal's centre (m).
SUCCESS_RADIUS_M = 0.05
#: Bumped whenever the scene, the expert or the file layout changes what is generated.
GENERATOR_VERSION = 1
_SUBSTEPS = round(1.0 / (RATE_HZ * CONTROL_PERIOD_S))  # control periods per camera frame (5)
_ARM_JITTER_RAD = np.array([0.1, 0.1, 0.1, 0.0, 0.1, 0.0, 0.1])  # start-pose variation (rad)


@dataclass(frozen=True)
class EpisodeRecord:
    """One recorded demonstration.

    Attributes:
        seed: the ``(seed, index)`` pair its random generator was created from.
        layout: object and goal start positions.
        images: (T, S, S, 3) uint8 RGB frames at 10 Hz.
        joints: (T, 7) float32 joint positions at the frame times (rad).
        joint_times_s: (K,) times of the 50 Hz joint samples since the start (s).
        joint_positions, joint_velocities, joint_efforts: (K, 7) rad, rad/s, N·m.
        final_error_m: object-to-goal distance at the end (m).
        plan_s: time the expert's plan needs (s).
    """

    seed: tuple[int, int]
    layout: Layout
    images: np.ndarray
    joints: np.ndarray
    joint_times_s: np.ndarray
    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    joint_efforts: np.ndarray
    final_error_m: float
    plan_s: float

    @property
    def success(self) -> bool:
        """Whether the object ended within :data:`SUCCESS_RADIUS_M` of the goal."""
        return self.final_error_m <= SUCCESS_RADIUS_M

    def to_bag_episode(self) -> BagEpisode:
        """The episode's streams for :func:`~eipl_trt.sim.bagwrite.write_episodes_bag`."""
        return BagEpisode(
            image_times_s=np.arange(len(self.images)) / RATE_HZ, images=self.images,
            joint_times_s=self.joint_times_s, joint_positions=self.joint_positions,
            joint_velocities=self.joint_velocities, joint_efforts=self.joint_efforts,
        )


def record_episode(scene: PusherScene, kin: ArmKinematics, seed: tuple[int, int], steps: int,
                   config: ExpertConfig = ExpertConfig()) -> EpisodeRecord:
    """Run the expert for ``steps`` camera periods (0.1 s each) and record everything.

    Args:
        scene: the scene (reset here).
        kin: kinematics for layout sampling.
        seed: ``(dataset seed, episode index)``; the episode is a deterministic function of it.
        steps: number of frames T (the last one at ``(T - 1) * 0.1`` s).
        config: expert settings.

    Returns:
        The recorded episode.
    """
    rng = np.random.default_rng(seed)
    layout = sample_layout(kin, rng, config)
    scene.reset(layout, rng.uniform(-1.0, 1.0, 7) * _ARM_JITTER_RAD)
    expert = PushExpert(scene, layout, rng, config)
    images: list[np.ndarray] = []
    frames: list[np.ndarray] = []
    q, qd, tau, times = [], [], [], []
    for k in range(1 + (steps - 1) * _SUBSTEPS):
        if k % _SUBSTEPS == 0:
            images.append(scene.render())
            frames.append(scene.joint_positions())
        times.append(scene.time_s)
        q.append(scene.joint_positions())
        qd.append(scene.joint_velocities())
        tau.append(scene.joint_efforts())
        if k < (steps - 1) * _SUBSTEPS:
            scene.step(expert.action())
    return EpisodeRecord(
        seed=(int(seed[0]), int(seed[1])), layout=layout, images=np.stack(images),
        joints=np.asarray(frames, dtype=np.float32), joint_times_s=np.round(np.asarray(times), 9),
        joint_positions=np.asarray(q), joint_velocities=np.asarray(qd), joint_efforts=np.asarray(tau),
        final_error_m=float(np.linalg.norm(scene.object_xy() - scene.goal_xy())), plan_s=expert.duration_s,
    )


def _joint_bounds(records: Iterable[EpisodeRecord], limits: np.ndarray) -> np.ndarray:
    """(2, 7) float32 min/max over all frames, each side widened by 5% of the range + 0.01 rad
    but not beyond the joint limits ``limits`` (7, 2) rad, so every joint has a nonzero width."""
    joints = np.concatenate([r.joints for r in records])
    lo, hi = joints.min(axis=0).astype(np.float64), joints.max(axis=0).astype(np.float64)
    margin = 0.05 * (hi - lo) + 0.01
    lo = np.minimum(lo, np.maximum(lo - margin, limits[:, 0]))
    hi = np.maximum(hi, np.minimum(hi + margin, limits[:, 1]))
    return np.stack([lo, hi]).astype(np.float32)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)


def _prepare_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out} already exists and is not empty; pass --overwrite to replace it")


@contextlib.contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A fresh directory beside ``out`` to build a dataset in (readable like any new directory),
    removed on exit; :func:`_install` moves it into place when it is complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _install(tmp: Path, out: Path) -> None:
    """Move the finished dataset ``tmp`` to ``out``, replacing an old one only at the very end.

    Every file is fsynced first; a kill between the two renames leaves no ``out`` (the old dataset
    waits in ``.out.old-PID``), never a mixture.
    """
    fsync_tree(tmp)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    fsync_dir(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def generate_dataset(
    out_dir: str | os.PathLike[str],
    *,
    n_train: int,
    n_test: int,
    seed: int = 0,
    steps: int = 70,
    image_size: int = 128,
    bag: bool | str | os.PathLike[str] = True,
    bag_splits: tuple[str, ...] = ("train", "test"),
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate Pusher demonstrations as an EIPL dataset directory (and a rosbag2).

    Args:
        out_dir: dataset directory to create.
        n_train, n_test: episode counts (n_train >= 1, n_test >= 0).
        seed: dataset seed; episode ``i`` uses ``(seed, i)``.
        steps: frames per episode T at 10 Hz (70 = 7 s; the expert needs about 6.1 s).
        image_size: camera image side S (px).
        bag: True for ``out_dir/bag``, a path for a bag elsewhere, False for no bag.
        bag_splits: which splits go into the bag, in this order.
        overwrite: replace an existing non-empty ``out_dir``.
        progress: show progress (a bar on a terminal, a line every few seconds in a log).

    Returns:
        The summary that is also saved as ``dataset.json``.

    Raises:
        InputError: bad counts or sizes, or ``out_dir``/the bag path exists.
    """
    from eipl_trt.sim.summary import dataset_summary, write_bag

    bag_path, bag_inside = _check_request(Path(out_dir), n_train, n_test, steps, bag, bag_splits, overwrite)
    out = Path(out_dir)
    counts = {"train": n_train, "test": n_test}
    started = time.perf_counter()
    records, limits = _record_all(counts, seed, steps, image_size, progress)
    all_records = records["train"] + records["test"]
    if max(r.plan_s for r in all_records) > (steps - 1) / RATE_HZ:
        logger.warning("episodes of %d frames (%.1f s) are shorter than some expert plans (up to %.1f s); "
                       "use --steps 70 or more for complete pushes", steps, (steps - 1) / RATE_HZ,
                       max(r.plan_s for r in all_records))
    summary = dataset_summary(records, counts, seed, steps, image_size, {
        "generator_version": GENERATOR_VERSION, "rate_hz": RATE_HZ, "success_radius_m": SUCCESS_RADIUS_M})
    with staging_dir(out) as tmp:
        for split in ("train", "test"):
            (tmp / split).mkdir()
            recs = records[split]
            shape = (len(recs), steps, image_size, image_size, 3)
            _save_npy(tmp / split / "images.npy",
                      np.stack([r.images for r in recs]) if recs else np.zeros(shape, np.uint8))
            _save_npy(tmp / split / "joints.npy",
                      np.stack([r.joints for r in recs]) if recs else np.zeros((0, steps, 7), np.float32))
        _save_npy(tmp / "joint_bounds.npy", _joint_bounds(all_records, limits))
        if bag_path is not None:
            summary["bag"] = write_bag(tmp, bag_path, bag_inside, records, bag_splits, counts)
        summary["generation_s"] = round(time.perf_counter() - started, 2)
        write_json_atomic(tmp / "dataset.json", summary)
        _install(tmp, out)
    logger.info("wrote %d+%d episodes to %s in %.1f s; expert success %.0f%%", n_train, n_test, out,
                summary["generation_s"], 100 * summary["expert"]["success_rate"])
    return summary


def _check_request(out: Path, n_train: int, n_test: int, steps: int, bag: bool | str | os.PathLike[str],
                   bag_splits: tuple[str, ...], overwrite: bool) -> tuple[Path | None, bool]:
    """Refuse bad counts, sizes and targets; prepare ``out``. Returns the bag path (or None) and whether it is inside."""
    if n_train < 1 or n_test < 0:
        raise InputError(f"need at least 1 train episode and >= 0 test episodes, got {n_train} and {n_test}")
    if steps < 2:
        raise InputError(f"steps must be >= 2 frames, got {steps}")
    if any(s not in ("train", "test") for s in bag_splits):
        raise InputError(f"bag splits must be 'train' and/or 'test', got {bag_splits}")
    _prepare_target(out, overwrite)
    bag_path = None if bag is False else (out / "bag" if bag is True else Path(bag))
    bag_inside = bag_path is not None and bag_path.resolve().parent == out.resolve()
    if bag_path is not None and not bag_inside and bag_path.exists():
        raise InputError(f"bag {bag_path} already exists; remove it or choose another path")
    return bag_path, bag_inside


def _record_all(counts: dict[str, int], seed: int, steps: int, image_size: int,
                progress: bool) -> tuple[dict[str, list[EpisodeRecord]], np.ndarray]:
    """Every episode, train then test (episode ``i`` seeded ``(seed, i)``), and the arm's joint limits."""
    records: dict[str, list[EpisodeRecord]] = {"train": [], "test": []}
    config = ExpertConfig()
    bar = Progress(counts["train"] + counts["test"], "episodes", "ep", enabled=progress)
    with PusherScene(image_size) as scene:
        kin = ArmKinematics(scene, config)
        limits = scene.joint_range.copy()
        index = 0
        for split in ("train", "test"):
            for _ in range(counts[split]):
                rec = record_episode(scene, kin, (seed, index), steps, config)
                records[split].append(rec)
                index += 1
                bar.update(1)
                bar.set_postfix({"err": f"{rec.final_error_m * 100:.1f} cm"})
    bar.close()
    return records, limits
