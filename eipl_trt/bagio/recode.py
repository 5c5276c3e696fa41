"""Rewrite a rosbag2 the way a real robot records it: compressed camera frames, fast joint_states.

``eipl-trt dataset recode`` (:func:`recode_bag`). Reads a bag with one raw ``sensor_msgs/Image``
topic and one ``sensor_msgs/JointState`` topic (``data/pusher_sample``, or the bag ``eipl-trt sim``
writes) and writes a new MCAP bag with:

* the frames as ``sensor_msgs/CompressedImage`` on ``<image topic>/compressed``, encoded the way
  ``compressed_image_transport`` publishes them (``"rgb8; jpeg compressed bgr8"``, JPEG at
  ``quality``, or PNG);
* the joint states, optionally resampled to ``joint_rate_hz`` (e.g. 500 Hz, what ros2_control's
  joint_state_broadcaster often publishes) by linear interpolation within each episode (pauses
  longer than ``gap_s`` are not bridged); positions, velocities and efforts all interpolated.

Header stamps and the frames' log times are kept; joint messages are logged 2 ms after their
stamp. The bag has version-8 metadata (:mod:`eipl_trt.bagio.compat`), so Humble, Jazzy and Kilted
all play it, and it appears complete or not at all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from eipl_trt.bagio.episodes import split_episodes
from eipl_trt.bagio.streams import COMPRESSED_TYPE, IMAGE_TYPE, JOINT_TYPE
from eipl_trt.errors import EipltrtError, InputError

__all__ = ["recode_bag"]

#: Joint messages are logged this long after their header stamp (a recorder's receive delay), ns.
JOINT_LOG_DELAY_NS = 2_000_000


def _stamp_ns(msg: Any, log_ns: int) -> int:
    ns = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
    return ns or log_ns


def _read(src: Path, codec: str, quality: int, ts: Any) -> tuple[str, str, list[Any], list[Any]]:
    """The image and joint topics, the frames re-encoded as CompressedImage and the joint samples."""
    from rosbags.highlevel import AnyReader

    from eipl_trt.camera import decode_raw, encode_compressed

    frames: list[tuple[int, int, Any]] = []  # (log ns, stamp ns, CompressedImage)
    joints: list[tuple[int, int, list[str], np.ndarray, np.ndarray, np.ndarray]] = []
    try:
        reader = AnyReader([src], default_typestore=ts)
        reader.open()
    except Exception as exc:  # rosbags raises its own errors and OSError
        raise InputError(f"cannot read bag {src}: {exc}") from exc
    try:
        topics = {c.topic: c.msgtype for c in reader.connections}
        images = [t for t, m in topics.items() if m == IMAGE_TYPE]
        states = [t for t, m in topics.items() if m == JOINT_TYPE]
        if len(images) != 1 or len(states) != 1:
            raise InputError(f"{src} needs exactly one {IMAGE_TYPE} and one {JOINT_TYPE} topic; it has {topics}")
        image_topic, joint_topic = images[0], states[0]
        conns = [c for c in reader.connections if c.topic in (image_topic, joint_topic)]
        for conn, log_ns, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic == image_topic:
                pixels = decode_raw(msg.height, msg.width, msg.encoding, msg.step, msg.data).image
                fmt, data = encode_compressed(pixels, msg.encoding, codec, quality)
                out = ts.types[COMPRESSED_TYPE](header=msg.header, format=fmt, data=np.frombuffer(data, np.uint8))
                frames.append((log_ns, _stamp_ns(msg, log_ns), out))
            else:
                joints.append((log_ns, _stamp_ns(msg, log_ns), list(msg.name), np.asarray(msg.position, float),
                               np.asarray(msg.velocity, float), np.asarray(msg.effort, float)))
    finally:
        reader.close()
    if not joints:
        raise InputError(f"{src}: no messages on its {JOINT_TYPE} topic {joint_topic}")
    return image_topic, joint_topic, frames, joints


def recode_bag(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, codec: str = "jpeg", quality: int = 95,
               joint_rate_hz: float | None = None, gap_s: float = 0.5) -> dict[str, Any]:
    """Write ``dst`` from ``src`` (see the module docstring).

    Args:
        src: a rosbag2 directory with one raw Image and one JointState topic.
        dst: the bag directory to create.
        codec: ``jpeg`` or ``png``.
        quality: JPEG quality (95 is image_transport's default).
        joint_rate_hz: resample joint_states to this rate (Hz); None keeps the recorded messages.
        gap_s: a pause (s) between joint messages longer than this separates episodes.

    Returns:
        Counts of what was written: ``frames``, ``joint_states``, the two topics, the image
        ``format`` string and ``jpeg_bytes_mean`` (mean compressed frame size in bytes).

    Raises:
        InputError: ``dst`` exists, ``src`` cannot be read or lacks one raw Image and one
            JointState topic, or its joint_states messages carry different joints.
        EipltrtError: ``dst`` could not be written.
    """
    from rosbags.typesys import Stores, get_typestore

    source, target = Path(src), Path(dst)
    if target.exists():
        raise InputError(f"{target} already exists; remove it or choose another --out")
    if codec not in ("jpeg", "png"):
        raise InputError(f"codec must be jpeg or png, got {codec!r}")
    ts = get_typestore(Stores.ROS2_JAZZY)
    image_topic, joint_topic, frames, joints = _read(source, codec, quality, ts)
    names = joints[0][2]
    if any(j[2] != names for j in joints):
        raise InputError(f"{source}: joint_states messages carry different joints; only uniform ones are resampled")
    records: list[tuple[int, str, Any]] = [(log_ns, "image", msg) for log_ns, _, msg in frames]
    records += _joint_records(joints, ts, joint_rate_hz, gap_s)
    records.sort(key=lambda r: (r[0], r[1] == "image"))
    _write_bag(target, records, image_topic, joint_topic, ts)
    n_joints = sum(1 for r in records if r[1] == "joints")
    return {"frames": len(frames), "joint_states": n_joints, "image_topic": f"{image_topic}/compressed",
            "joint_topic": joint_topic, "format": frames[0][2].format if frames else "",
            "jpeg_bytes_mean": float(np.mean([f[2].data.size for f in frames])) if frames else 0.0}


def _joint_records(joints: list[Any], ts: Any, joint_rate_hz: float | None,
                   gap_s: float) -> list[tuple[int, str, Any]]:
    """``(log ns, "joints", JointState)`` as recorded, or resampled at ``joint_rate_hz`` within each episode."""
    names = joints[0][2]
    header_t, time_t, joint_t = ts.types["std_msgs/msg/Header"], ts.types["builtin_interfaces/msg/Time"], ts.types[JOINT_TYPE]

    def joint_msg(stamp: int, pos: np.ndarray, vel: np.ndarray, eff: np.ndarray) -> Any:
        header = header_t(stamp=time_t(sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000), frame_id="")
        return joint_t(header=header, name=names, position=pos, velocity=vel, effort=eff)

    if not joint_rate_hz:
        return [(log_ns, "joints", joint_msg(stamp, pos, vel, eff)) for log_ns, stamp, _, pos, vel, eff in joints]
    records: list[tuple[int, str, Any]] = []
    stamps = np.array([j[1] for j in joints], np.int64)
    t = (stamps - stamps[0]) * 1e-9
    for part in split_episodes(t, gap_s):
        span = t[part]
        ticks = span[0] + np.arange(int(np.floor((span[-1] - span[0]) * joint_rate_hz + 1e-6)) + 1) / joint_rate_hz
        columns = []
        for k in (3, 4, 5):
            values = np.stack([j[k] for j in joints[part]]) if joints[part][0][k].size else np.zeros((len(span), 0))
            columns.append(np.stack([np.interp(ticks, span, values[:, c]) for c in range(values.shape[1])], -1)
                           if values.shape[1] else np.zeros((len(ticks), 0)))
        for i, tick in enumerate(ticks):
            stamp = int(stamps[0] + round(tick * 1e9))
            records.append((stamp + JOINT_LOG_DELAY_NS, "joints",
                            joint_msg(stamp, columns[0][i], columns[1][i], columns[2][i])))
    return records


def _write_bag(target: Path, records: list[tuple[int, str, Any]], image_topic: str, joint_topic: str, ts: Any) -> None:
    """The records as an MCAP bag at ``target``, written beside it and renamed into place.

    Raises:
        EipltrtError: the bag could not be written (disk full, permissions).
    """
    from eipl_trt.bagio.compat import open_bag_writer, recorded_qos
    from eipl_trt.common.atomic import replace_atomic

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        # version-8 metadata with a QoS profile per topic and custom_data a map: what Humble, Jazzy and Kilted read
        with open_bag_writer(tmp / target.name) as writer:
            qos = [recorded_qos()]
            c_img = writer.add_connection(f"{image_topic}/compressed", COMPRESSED_TYPE, typestore=ts,
                                          offered_qos_profiles=qos)
            c_js = writer.add_connection(joint_topic, JOINT_TYPE, typestore=ts, offered_qos_profiles=qos)
            for log_ns, kind, msg in records:
                conn, msgtype = (c_img, COMPRESSED_TYPE) if kind == "image" else (c_js, JOINT_TYPE)
                writer.write(conn, log_ns, bytes(ts.serialize_cdr(msg, msgtype)))
        replace_atomic(tmp / target.name, target)
    except OSError as exc:
        raise EipltrtError(f"could not write bag {target}: {exc}; check free disk space and permissions") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
