#!/usr/bin/env python3
"""Rewrite a rosbag2 the way a real robot records it: compressed camera frames, fast joint_states.

Reads a bag with a raw ``sensor_msgs/Image`` topic and a ``sensor_msgs/JointState`` topic (e.g.
``data/pusher_sample`` or the bag ``eipl-trt sim`` writes) and writes a new MCAP bag with:

* the frames as ``sensor_msgs/CompressedImage`` on ``<image topic>/compressed``, encoded the way
  ``compressed_image_transport`` publishes them (``"rgb8; jpeg compressed bgr8"``, JPEG quality
  --quality, or PNG);
* the joint states, optionally resampled to --joint-rate-hz (e.g. 500 Hz, what ros2_control's
  joint_state_broadcaster often publishes) by linear interpolation within each episode (pauses
  longer than --gap are not bridged); positions, velocities and efforts all interpolated.

Header stamps and the frames' log times are kept; joint messages are logged 2 ms after their stamp.

    python scripts/recode_bag.py --bag data/pusher_sample --out /tmp/pusher_jpeg
    python scripts/recode_bag.py --bag data_work/sim/bag --out /tmp/robot_bag --joint-rate-hz 500
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from eipl_trt.bagio import COMPRESSED_TYPE, IMAGE_TYPE, JOINT_TYPE, split_episodes
from eipl_trt.camera import decode_raw, encode_compressed
from eipl_trt.errors import InputError


def _stamp_ns(msg: Any, log_ns: int) -> int:
    ns = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
    return ns or log_ns


def recode_bag(src: str | Path, dst: str | Path, *, codec: str = "jpeg", quality: int = 95,
               joint_rate_hz: float | None = None, gap_s: float = 0.5) -> dict[str, Any]:
    """Write ``dst`` from ``src`` (see the module docstring). Returns counts of what was written.

    Raises:
        InputError: ``dst`` exists, or ``src`` lacks one raw Image and one JointState topic.
    """
    from rosbags.highlevel import AnyReader
    from eipl_trt.bagio.compat import open_bag_writer, recorded_qos
    from rosbags.typesys import Stores, get_typestore

    if Path(dst).exists():
        raise InputError(f"{dst} already exists; remove it or choose another --out")
    ts = get_typestore(Stores.ROS2_JAZZY)
    frames: list[tuple[int, int, Any]] = []  # (log ns, stamp ns, CompressedImage)
    joints: list[tuple[int, int, list[str], np.ndarray, np.ndarray, np.ndarray]] = []
    with AnyReader([Path(src)], default_typestore=ts) as reader:
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
    names = joints[0][2]
    if any(j[2] != names for j in joints):
        raise InputError(f"{src}: joint_states messages carry different joints; only uniform ones are resampled")
    stamps = np.array([j[1] for j in joints], np.int64)
    records: list[tuple[int, str, Any]] = [(log_ns, "image", msg) for log_ns, _, msg in frames]
    header_t, time_t, joint_t = ts.types["std_msgs/msg/Header"], ts.types["builtin_interfaces/msg/Time"], ts.types[JOINT_TYPE]

    def joint_msg(stamp: int, pos: np.ndarray, vel: np.ndarray, eff: np.ndarray) -> Any:
        header = header_t(stamp=time_t(sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000), frame_id="")
        return joint_t(header=header, name=names, position=pos, velocity=vel, effort=eff)

    if joint_rate_hz:
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
                records.append((stamp + 2_000_000, "joints", joint_msg(stamp, columns[0][i], columns[1][i], columns[2][i])))
    else:
        records.extend((log_ns, "joints", joint_msg(stamp, pos, vel, eff)) for log_ns, stamp, _, pos, vel, eff in joints)
    records.sort(key=lambda r: (r[0], r[1] == "image"))
    # version-8 metadata with a QoS profile per topic and custom_data a map: what Humble, Jazzy and Kilted all read
    with open_bag_writer(Path(dst)) as writer:
        qos = [recorded_qos()]
        c_img = writer.add_connection(f"{image_topic}/compressed", COMPRESSED_TYPE, typestore=ts,
                                      offered_qos_profiles=qos)
        c_js = writer.add_connection(joint_topic, JOINT_TYPE, typestore=ts, offered_qos_profiles=qos)
        for log_ns, kind, msg in records:
            conn, msgtype = (c_img, COMPRESSED_TYPE) if kind == "image" else (c_js, JOINT_TYPE)
            writer.write(conn, log_ns, bytes(ts.serialize_cdr(msg, msgtype)))
    n_joints = sum(1 for r in records if r[1] == "joints")
    return {"frames": len(frames), "joint_states": n_joints, "image_topic": f"{image_topic}/compressed",
            "joint_topic": joint_topic, "format": frames[0][2].format if frames else "",
            "jpeg_bytes_mean": float(np.mean([f[2].data.size for f in frames])) if frames else 0.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bag", required=True, type=Path, help="source rosbag2 (raw Image + JointState)")
    parser.add_argument("--out", required=True, type=Path, help="bag directory to create")
    parser.add_argument("--codec", choices=("jpeg", "png"), default="jpeg", help="default %(default)s")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality (default %(default)s, as image_transport)")
    parser.add_argument("--joint-rate-hz", type=float, default=None, help="resample joint_states to this rate")
    parser.add_argument("--gap", type=float, default=0.5, help="pause (s) that separates episodes (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        info = recode_bag(args.bag, args.out, codec=args.codec, quality=args.quality,
                          joint_rate_hz=args.joint_rate_hz, gap_s=args.gap)
    except InputError as exc:
        print(f"recode_bag: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {info['frames']} frames on {info['image_topic']} ({info['format']!r}, "
          f"{info['jpeg_bytes_mean'] / 1024:.1f} KiB each), {info['joint_states']} joint_states on {info['joint_topic']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
