"""Episodes: bag streams cut at pauses (or marker messages) and sampled at the control rate (see :mod:`eipl_trt.bagio`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from eipl_trt.bagio.streams import EPS_S as _EPS_S
from eipl_trt.bagio.streams import BagStreams
from eipl_trt.errors import InputError

__all__ = ["Episode", "select_joints", "split_episodes", "resample"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Episode:
    """One sequence sampled at the control rate.

    Attributes:
        images: (T, H, W, 3) uint8 in ``channel_order``.
        channel_order: "rgb" or "bgr".
        encoding: ROS encoding of the source images ("rgb8", "bgr8", "mono8", ...).
        joints: (T, D) float64 joint positions (rad or m).
        joint_names: the D joint names (empty when the dataset does not name them).
        stamps: (T,) float64 sample times (s; since the epoch for bags, from 0 for datasets).
        rate_hz: sampling rate (Hz).
        source: where the episode came from, e.g. ``"run1 episode 2"``.
        targets: (T, D) float64 training labels at the ticks (e.g. a demonstrator's intended joints,
            :mod:`eipl_trt.bagio.labels`), or ``None``: the next measured joints are the labels.
    """

    images: np.ndarray
    channel_order: str
    encoding: str
    joints: np.ndarray
    joint_names: tuple[str, ...]
    stamps: np.ndarray
    rate_hz: float
    source: str
    targets: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])


def select_joints(names: Sequence[str], positions: np.ndarray, wanted_names: Sequence[str]) -> np.ndarray:
    """Pick joints by name.

    Args:
        names: the D names of the columns of ``positions``.
        positions: (M, D) joint positions.
        wanted_names: the joints to keep, in the order wanted.

    Returns:
        (M, len(wanted_names)) positions.

    Raises:
        InputError: a wanted joint is not in ``names``.
    """
    index = {n: i for i, n in reversed(list(enumerate(names)))}
    missing = [n for n in wanted_names if n not in index]
    if missing:
        raise InputError(f"joint(s) {', '.join(missing)} not found; the joint states have: "
                         f"{', '.join(names) or 'no joints'}. Pass the model's joint names as recorded")
    return np.asarray(positions)[:, [index[n] for n in wanted_names]]


def split_episodes(stamps: np.ndarray, gap_s: float, markers: np.ndarray | Sequence[float] = ()) -> list[slice]:
    """Split ascending ``stamps`` (s) wherever consecutive stamps are more than ``gap_s`` apart,
    and before the first stamp at or after each marker time (s).

    Returns:
        Slices into ``stamps``, one per episode, in order (none for empty ``stamps``).
    """
    stamps = np.asarray(stamps, dtype=np.float64)
    if stamps.size == 0:
        return []
    cuts = set((np.flatnonzero(np.diff(stamps) > gap_s) + 1).tolist())
    cuts.update(int(i) for i in np.searchsorted(stamps, np.asarray(markers, dtype=np.float64) - _EPS_S)
                if 0 < i < stamps.size)
    bounds = [0, *sorted(cuts), int(stamps.size)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def resample(
    streams: BagStreams,
    rate_hz: float,
    *,
    joint_names: Sequence[str] | None = None,
    gap_s: float | None = None,
    min_samples: int = 2,
) -> list[Episode]:
    """Cut the streams into episodes and sample each at ``rate_hz``.

    An episode is a time span where neither stream pauses longer than ``gap_s`` (and, with a marker
    topic, between two of its messages). Its ticks start
    where both streams have begun and step by ``1 / rate_hz`` until either stream ends. At each
    tick: the latest image at or before it, and the joints linearly interpolated in time.

    Args:
        streams: from :func:`read_bag`.
        rate_hz: control rate (Hz), e.g. 10 for EIPL.
        joint_names: joints to keep, in model order; None keeps all.
        gap_s: pause that separates episodes (s); default max(1 s, 5 control periods).
        min_samples: episodes with fewer ticks are dropped with a warning.

    Returns:
        The episodes in time order.

    Raises:
        InputError: bad rate, missing joints, or no episode with ``min_samples`` ticks.
    """
    if not rate_hz > 0:
        raise InputError(f"rate must be > 0 Hz, got {rate_hz}")
    gap = max(1.0, 5.0 / rate_hz) if gap_s is None else float(gap_s)
    names = tuple(streams.joint_names if joint_names is None else joint_names)
    joints = select_joints(streams.joint_names, streams.joint_positions, names)
    its, jts = streams.image_stamps, streams.joint_stamps
    spans = [(max(its[a.start], jts[b.start]), min(its[a.stop - 1], jts[b.stop - 1]), b)
             for a in split_episodes(its, gap, streams.marker_stamps)
             for b in split_episodes(jts, gap, streams.marker_stamps)]
    episodes: list[Episode] = []
    label = Path(streams.path).name
    for start, end, jslice in sorted((s for s in spans if s[0] <= s[1] + _EPS_S), key=lambda s: s[0]):
        ticks = start + np.arange(int(np.floor((end - start + _EPS_S) * rate_hz)) + 1) / rate_hz
        if len(ticks) < min_samples:
            logger.warning("dropping a %d-sample episode at t=%.3f s in %s (fewer than %d samples)",
                           len(ticks), start, label, min_samples)
            continue
        t_j, q_j = jts[jslice], joints[jslice]
        out = np.empty((len(ticks), len(names)))
        for c, name in enumerate(names):
            valid = ~np.isnan(q_j[:, c])
            if not valid.any():
                raise InputError(f"joint {name} has no samples in the episode at t={start:.3f} s of {label}")
            out[:, c] = np.interp(ticks, t_j[valid], q_j[valid, c])
        frame = np.searchsorted(its, ticks + _EPS_S, side="right") - 1
        episodes.append(Episode(
            images=streams.images[frame], channel_order=streams.channel_order, encoding=streams.encoding,
            joints=out, joint_names=names, stamps=ticks, rate_hz=float(rate_hz),
            source=f"{label} episode {len(episodes)}",
        ))
    if not episodes:
        raise InputError(f"no episode in {streams.path} has {min_samples} or more samples at {rate_hz} Hz; "
                         f"check the topics' stamps or lower --gap/--rate")
    return episodes
