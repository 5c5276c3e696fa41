"""Write recorded episodes as a rosbag2 (MCAP) of camera images and joint states.

The bag looks like one a real robot records with ``ros2 bag record``: ``sensor_msgs/msg/Image``
(rgb8) on ``/camera/image_raw`` and ``sensor_msgs/msg/JointState`` (position, velocity and effort
all filled) on ``/joint_states``, with header stamps on a wall clock (2026 by default), the
episodes one after another separated by a pause, and each message logged a few milliseconds
after its stamp (transport latency). Storage is MCAP with zstd-compressed chunks (what rosbag2's
MCAP plugin does by default), metadata version 8 with a recorded QoS profile per topic (what
Humble, Jazzy and Kilted all play: :mod:`eipl_trt.bagio.compat`), message types from the Jazzy typestore
(Image and JointState are the same in all three).

The bag is written into a temporary directory beside the target and renamed into place, so an
interrupted run leaves no half-written bag. ``rosbags`` is imported inside :func:`write_episodes_bag`.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eipl_trt.bagio.compat import open_bag_writer, recorded_qos
from eipl_trt.common.atomic import replace_atomic
from eipl_trt.errors import EipltrtError, InputError

__all__ = ["BagEpisode", "DEFAULT_START_NS", "write_episodes_bag"]

logger = logging.getLogger(__name__)

#: Default stamp of the first message: 2026-03-02 10:00:00 UTC (ns since the epoch).
DEFAULT_START_NS = int(_dt.datetime(2026, 3, 2, 10, 0, 0, tzinfo=_dt.timezone.utc).timestamp()) * 1_000_000_000


@dataclass(frozen=True)
class BagEpisode:
    """One episode's streams; times are relative to the episode start.

    Attributes:
        image_times_s: (T,) camera stamps (s).
        images: (T, H, W, 3) uint8 RGB frames.
        joint_times_s: (K,) joint-state stamps (s).
        joint_positions: (K, D) joint positions (rad).
        joint_velocities: (K, D) joint velocities (rad/s), or None for zeros.
        joint_efforts: (K, D) joint efforts (N·m), or None for zeros.
    """

    image_times_s: np.ndarray
    images: np.ndarray
    joint_times_s: np.ndarray
    joint_positions: np.ndarray
    joint_velocities: np.ndarray | None = None
    joint_efforts: np.ndarray | None = None

    @property
    def duration_s(self) -> float:
        """Time of the last message (s)."""
        return float(max(self.image_times_s[-1], self.joint_times_s[-1]))


def _check(episode: BagEpisode, n_joints: int) -> None:
    images = episode.images
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise InputError(f"episode images must be (T, H, W, 3) uint8, got {images.shape} {images.dtype}")
    if len(episode.image_times_s) != len(images) or len(images) == 0:
        raise InputError(f"{len(images)} images but {len(episode.image_times_s)} image times")
    for name in ("joint_positions", "joint_velocities", "joint_efforts"):
        arr = getattr(episode, name)
        if arr is not None and arr.shape != (len(episode.joint_times_s), n_joints):
            raise InputError(f"{name} must be ({len(episode.joint_times_s)}, {n_joints}), got {arr.shape}")


def write_episodes_bag(
    path: str | os.PathLike[str],
    episodes: Sequence[BagEpisode],
    *,
    joint_names: Sequence[str],
    start_time_ns: int = DEFAULT_START_NS,
    gap_s: float = 3.0,
    image_topic: str = "/camera/image_raw",
    joint_topic: str = "/joint_states",
    frame_id: str = "camera_optical_frame",
    image_latency_s: float = 0.015,
    joint_latency_s: float = 0.002,
) -> list[float]:
    """Write ``episodes`` into a new rosbag2 directory ``path`` (MCAP storage).

    Args:
        path: the bag directory to create; it must not exist.
        episodes: the episodes, written in order.
        joint_names: names of the D joints (``JointState.name``).
        start_time_ns: header stamp of the first episode's start (ns since the epoch).
        gap_s: pause between the end of one episode and the start of the next (s).
        image_topic, joint_topic: topic names.
        frame_id: ``header.frame_id`` of the images.
        image_latency_s, joint_latency_s: log time minus header stamp (s).

    Returns:
        The start stamp of each episode (s since the epoch).

    Raises:
        InputError: malformed episodes, or ``path`` exists.
        EipltrtError: the bag could not be written (disk full, permissions); nothing is left behind.
    """
    from rosbags.typesys import Stores, get_typestore

    target = Path(path)
    if target.exists():
        raise InputError(f"bag {target} already exists; remove it or choose another path")
    if not episodes:
        raise InputError("no episodes to write into the bag")
    names = [str(n) for n in joint_names]
    for episode in episodes:
        _check(episode, len(names))
    typestore = get_typestore(Stores.ROS2_JAZZY)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_parent = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    starts: list[float] = []
    try:
        with open_bag_writer(tmp_parent / target.name) as writer:
            qos = [recorded_qos()]
            conns = [writer.add_connection(topic, msgtype, typestore=typestore, offered_qos_profiles=qos)
                     for topic, msgtype in ((image_topic, "sensor_msgs/msg/Image"),
                                            (joint_topic, "sensor_msgs/msg/JointState"))]
            t0_ns = int(start_time_ns)
            for episode in episodes:
                starts.append(t0_ns / 1e9)
                records = _episode_records(typestore, episode, t0_ns, names, frame_id, conns,
                                           (image_latency_s, joint_latency_s))
                for log_ns, _, conn, raw in sorted(records, key=lambda r: (r[0], r[1])):
                    writer.write(conn, log_ns, raw)
                t0_ns += round((episode.duration_s + gap_s) * 1e9)
        replace_atomic(tmp_parent / target.name, target)
    except OSError as exc:
        raise EipltrtError(f"could not write bag {target}: {exc}; check free disk space and permissions") from exc
    finally:
        shutil.rmtree(tmp_parent, ignore_errors=True)
    logger.debug("wrote %d episodes to bag %s", len(episodes), target)
    return starts


def _episode_records(typestore: Any, episode: BagEpisode, t0_ns: int, names: list[str], frame_id: str,
                     conns: list[Any], latencies_s: tuple[float, float]) -> list[tuple[int, int, Any, bytes]]:
    """``(log time ns, order, connection, CDR bytes)`` of one episode's frames and joint states, from ``t0_ns``."""
    image_t = typestore.types["sensor_msgs/msg/Image"]
    joint_t = typestore.types["sensor_msgs/msg/JointState"]
    header_t = typestore.types["std_msgs/msg/Header"]
    time_t = typestore.types["builtin_interfaces/msg/Time"]

    def header(stamp_ns: int, frame: str) -> object:
        return header_t(stamp=time_t(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000), frame_id=frame)

    records: list[tuple[int, int, Any, bytes]] = []
    for t, image in zip(episode.image_times_s, episode.images):
        stamp = t0_ns + round(float(t) * 1e9)
        h, w = image.shape[:2]
        msg = image_t(header=header(stamp, frame_id), height=h, width=w, encoding="rgb8", is_bigendian=0,
                      step=w * 3, data=np.ascontiguousarray(image).reshape(-1))
        raw = bytes(typestore.serialize_cdr(msg, image_t.__msgtype__))
        records.append((stamp + round(latencies_s[0] * 1e9), 0, conns[0], raw))
    zeros = np.zeros((len(episode.joint_times_s), len(names)))
    vel = zeros if episode.joint_velocities is None else episode.joint_velocities
    eff = zeros if episode.joint_efforts is None else episode.joint_efforts
    for i, t in enumerate(episode.joint_times_s):
        stamp = t0_ns + round(float(t) * 1e9)
        msg = joint_t(header=header(stamp, ""), name=names,
                      position=np.asarray(episode.joint_positions[i], dtype=np.float64),
                      velocity=np.asarray(vel[i], dtype=np.float64), effort=np.asarray(eff[i], dtype=np.float64))
        raw = bytes(typestore.serialize_cdr(msg, joint_t.__msgtype__))
        records.append((stamp + round(latencies_s[1] * 1e9), 1, conns[1], raw))
    return records
