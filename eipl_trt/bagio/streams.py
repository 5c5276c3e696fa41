"""Reading one camera and one joint-state topic of a rosbag2 into :class:`BagStreams` (see :mod:`eipl_trt.bagio`)."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from eipl_trt.camera import decode_message
from eipl_trt.errors import EipltrtError, InputError
from eipl_trt.imaging import resize_bilinear, to_channel_order

__all__ = ["IMAGE_TYPE", "COMPRESSED_TYPE", "JOINT_TYPE", "BagStreams", "read_bag"]

logger = logging.getLogger(__name__)

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
JOINT_TYPE = "sensor_msgs/msg/JointState"
EPS_S = 1e-5  # stamp tolerance (s): float64 epoch seconds carry ~0.3 µs rounding
# Fast-CDR (rclpy) sizes empty float64 sequences with 4 alignment bytes it never writes, so a
# JointState with empty velocity/effort arrives up to 8 bytes longer than its content.
_MAX_TRAILING = 16


@dataclass(frozen=True)
class BagStreams:
    """The image and joint streams of a bag, each sorted by stamp.

    Attributes:
        path: the bag directory.
        image_topic, joint_topic: the topics read.
        image_stamps: (N,) float64 image stamps (s since the epoch).
        images: (N, H, W, 3) uint8 in ``channel_order``.
        encoding: the first image's ROS encoding as recorded (e.g. "bgr8"), or a CompressedImage's
            format (e.g. "rgb8; jpeg compressed bgr8").
        channel_order: "rgb" or "bgr", the order of ``images``.
        joint_stamps: (M,) float64 joint-state stamps (s).
        joint_names: the D joint names seen, in order of first appearance.
        joint_positions: (M, D) float64 positions (rad or m), NaN where a message lacked a joint.
        marker_stamps: (K,) float64 times (s) of the marker topic's messages: each starts an episode.
        decode_s: time spent decoding the images (s), e.g. JPEG decompression.
    """

    path: str
    image_topic: str
    joint_topic: str
    image_stamps: np.ndarray
    images: np.ndarray
    encoding: str
    channel_order: str
    joint_stamps: np.ndarray
    joint_names: tuple[str, ...]
    joint_positions: np.ndarray
    marker_stamps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    decode_s: float = 0.0



def _bag_dir(path: Path) -> Path:
    if not path.exists():
        raise InputError(f"bag {path} does not exist; pass a rosbag2 directory (with metadata.yaml)")
    if path.is_file() and (path.parent / "metadata.yaml").is_file():
        return path.parent
    if not (path / "metadata.yaml").is_file():
        raise InputError(f"{path} is not a rosbag2 directory (no metadata.yaml); pass the directory "
                         f"`ros2 bag record` created, or reindex the bag")
    return path


def _check_metadata(bag: Path) -> None:
    """Refuse a ``metadata.yaml`` that is not rosbag2's (empty, cut short, not YAML), naming the fix."""
    import yaml

    path = bag / "metadata.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        problem = "" if isinstance(data, dict) and isinstance(data.get("rosbag2_bagfile_information"), dict) else (
            "it is empty" if data is None else "it has no rosbag2_bagfile_information mapping")
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if problem:
        raise InputError(f"{path} is not a valid rosbag2 metadata file ({problem}). `ros2 bag reindex {bag}` "
                         f"rebuilds it from the storage files; or re-record the bag")


def _pick_topic(topics: dict[str, str], wanted: tuple[str, ...], topic: str | None, flag: str) -> str:
    """The topic of one of the ``wanted`` types (in order of preference): ``topic``, or the only one."""
    listing = ", ".join(f"{t} ({m})" for t, m in sorted(topics.items())) or "none"
    kinds = " or ".join(wanted)
    if topic is not None:
        if topic not in topics:
            raise InputError(f"topic {topic} is not in the bag; topics: {listing}")
        if topics[topic] not in wanted:
            raise InputError(f"topic {topic} has type {topics[topic]}, expected {kinds}")
        return topic
    for wanted_type in wanted:  # e.g. raw frames first: a bag recorded with -a has both
        candidates = sorted(t for t, m in topics.items() if m == wanted_type)
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise InputError(f"several {wanted_type} topics ({', '.join(candidates)}); choose one with {flag}")
    raise InputError(f"no {kinds} topic in the bag; topics: {listing}")


def _deserialize(typestore: Any, raw: bytes, msgtype: str) -> Any:
    """``deserialize_cdr``, tolerating the trailing padding of rclpy-serialized empty sequences."""
    from rosbags.serde import SerdeError

    try:
        return typestore.deserialize_cdr(raw, msgtype)
    except SerdeError as exc:
        if "size mismatch" not in str(exc):
            raise
        msgdef = typestore.get_msgdef(msgtype)
        func = msgdef.deserialize_cdr_le if raw[1] else msgdef.deserialize_cdr_be
        message, pos = func(memoryview(raw)[4:], 0, msgdef.cls, typestore)
        if len(raw) - 4 - pos > _MAX_TRAILING:
            raise
        return message


def _stamp(msg: Any, log_ns: int, unstamped: list[int]) -> float:
    """Header stamp (s); the bag's log time when the stamp is zero (counted in ``unstamped``)."""
    sec, nsec = int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)
    if sec or nsec:
        return sec + nsec * 1e-9
    unstamped[0] += 1
    return log_ns * 1e-9


def _json_start(msg: Any, log_ns: int) -> float:
    """A headerless marker's time: the ``start_s`` of a JSON String (``/sim/episode``), else its log time.

    A recorder on simulated time logs a message with the latest ``/clock`` it has seen, which may still
    be the previous episode's last one; the start the sender wrote into the message is exact.
    """
    try:
        start = json.loads(msg.data).get("start_s") if isinstance(getattr(msg, "data", None), str) else None
    except (ValueError, AttributeError):
        start = None
    return float(start) if isinstance(start, (int, float)) and math.isfinite(start) and start > 0 else log_ns * 1e-9


class _StreamCollector:
    """The messages of one bag's image and joint topics (and marker topic) gathered into :class:`BagStreams`."""

    def __init__(self, bag: Path, image_topic: str, joint_topic: str, channel_order: str | None,
                 image_size: tuple[int, int] | None) -> None:
        self.bag, self.image_topic, self.joint_topic = bag, image_topic, joint_topic
        self.channel_order, self.image_size = channel_order, image_size
        self.images: list[np.ndarray] = []
        self.image_t: list[float] = []
        self.joint_t: list[float] = []
        self.rows: list[tuple[np.ndarray, np.ndarray]] = []
        self.columns: dict[str, int] = {}
        self.markers: list[float] = []
        self.encoding = ""
        self.skipped = 0
        self.unstamped = [0]
        self.decode_s = 0.0

    def add_marker(self, msg: Any, log_ns: int) -> None:
        self.markers.append(_stamp(msg, log_ns, [0]) if hasattr(msg, "header") else _json_start(msg, log_ns))

    def add_image(self, msg: Any, log_ns: int) -> None:
        """Decode a frame to the channel order (the first frame's, unless one was asked for) and size."""
        started = time.perf_counter()
        try:
            decoded = decode_message(msg, self.channel_order or "rgb")
        except InputError as exc:
            raise InputError(f"image {len(self.images)} on {self.image_topic} in {self.bag}: {exc}") from None
        self.decode_s += time.perf_counter() - started
        if not self.encoding:
            self.encoding = getattr(msg, "encoding", None) or msg.format
            self.channel_order = self.channel_order or ("bgr" if decoded.encoding.startswith("bgr") else "rgb")
        img = to_channel_order(decoded.image, decoded.encoding, self.channel_order or "rgb")
        if self.image_size is not None:
            img = resize_bilinear(img, self.image_size)
        if self.images and img.shape != self.images[0].shape:
            raise InputError(f"images on {self.image_topic} change size from {self.images[0].shape[:2]} to "
                             f"{img.shape[:2]}; pass image_size to resize them all")
        self.images.append(np.ascontiguousarray(img))
        self.image_t.append(_stamp(msg, log_ns, self.unstamped))

    def add_joints(self, msg: Any, log_ns: int) -> None:
        """One JointState's positions by name (a message without matching name/position arrays is skipped)."""
        names, pos = list(msg.name), np.asarray(msg.position, dtype=np.float64)
        if not names or len(pos) != len(names):
            self.skipped += 1
            return
        idx = np.array([self.columns.setdefault(n, len(self.columns)) for n in names])
        self.rows.append((idx, pos))
        self.joint_t.append(_stamp(msg, log_ns, self.unstamped))

    def streams(self) -> BagStreams:
        """The streams sorted by stamp, joints as an (M, D) table.

        Raises:
            InputError: the image or joint topic had no usable message.
        """
        bag, itopic, jtopic = self.bag, self.image_topic, self.joint_topic
        if self.unstamped[0]:
            logger.info("%d messages in %s have a zero header stamp; used the bag's log time", self.unstamped[0], bag)
        logger.debug("decoded %d frames from %s in %.3f s", len(self.images), itopic, self.decode_s)
        if self.skipped:
            logger.warning("skipped %d JointState messages on %s without matching name/position arrays",
                           self.skipped, jtopic)
        if not self.images:
            raise InputError(f"image topic {itopic} in {bag} has no messages")
        if not self.rows:
            raise InputError(f"joint topic {jtopic} in {bag} has no messages with joint positions")
        positions = np.full((len(self.rows), len(self.columns)), np.nan)
        for i, (idx, pos) in enumerate(self.rows):
            positions[i, idx] = pos
        io, jo = np.argsort(self.image_t, kind="stable"), np.argsort(self.joint_t, kind="stable")
        return BagStreams(
            path=str(bag), image_topic=itopic, joint_topic=jtopic,
            image_stamps=np.asarray(self.image_t)[io], images=np.stack(self.images)[io], encoding=self.encoding,
            channel_order=self.channel_order or "rgb", joint_stamps=np.asarray(self.joint_t)[jo],
            joint_names=tuple(self.columns), joint_positions=positions[jo],
            marker_stamps=np.sort(np.asarray(self.markers, dtype=np.float64)), decode_s=self.decode_s,
        )


def _messages(reader: Any, connections: list[Any], bag: Path) -> Iterator[tuple[Any, int, Any]]:
    """``(connection, log time ns, message)`` in log order; a payload that is not valid CDR is an InputError."""
    counts: dict[str, int] = {}
    for conn, log_ns, raw in reader.messages(connections=connections):
        index = counts[conn.topic] = counts.get(conn.topic, -1) + 1
        try:
            msg = _deserialize(reader.typestore, raw, conn.msgtype)
        except Exception as exc:  # rosbags raises SerdeError, struct.error, UnicodeDecodeError, ...
            raise InputError(
                f"message {index} on {conn.topic} ({conn.msgtype}, logged at {log_ns * 1e-9:.6f} s) in {bag} "
                f"is not a valid CDR payload ({type(exc).__name__}: {str(exc).rstrip('.')}); the recording is "
                f"damaged: re-record it"
            ) from exc
        yield conn, log_ns, msg


def read_bag(
    path: str | os.PathLike[str],
    *,
    image_topic: str | None = None,
    joint_topic: str | None = None,
    channel_order: str | None = None,
    image_size: tuple[int, int] | None = None,
    marker_topic: str | None = None,
) -> BagStreams:
    """Read the camera and joint-state streams of a rosbag2.

    Args:
        path: the bag directory (or a storage file inside it).
        image_topic: the Image or CompressedImage topic; needed when the bag has several of one
            type (a single raw Image topic is preferred over a CompressedImage one).
        joint_topic: the JointState topic; likewise.
        channel_order: convert images to "rgb" or "bgr"; None keeps the first image's order
            (mono8 becomes "rgb"; JPEG/PNG decode to "bgr").
        image_size: (height, width) to resize every image to (px), or None to keep it.
        marker_topic: a topic of any type whose messages each start a new episode (their header
            stamp; without one, a JSON String's ``start_s`` as ``/sim/episode`` sends, else log time),
            e.g. a ``std_msgs/msg/Empty`` published at each reset.

    Returns:
        The streams, sorted by stamp.

    Raises:
        InputError: missing/unreadable/corrupt bag (metadata.yaml, storage file, or a message that
            is not valid CDR: named by topic and index), missing or ambiguous topic, wrong topic type,
            empty topic, unsupported encoding, undecodable or truncated frames, images changing size.
    """
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    bag = _bag_dir(Path(path))
    _check_metadata(bag)
    if channel_order not in (None, "rgb", "bgr"):
        raise InputError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    try:
        with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_JAZZY)) as reader:
            topics = {c.topic: c.msgtype for c in reader.connections}
            itopic = _pick_topic(topics, (IMAGE_TYPE, COMPRESSED_TYPE), image_topic, "--image-topic")
            jtopic = _pick_topic(topics, (JOINT_TYPE,), joint_topic, "--joint-topic")
            if marker_topic is not None and marker_topic not in topics:
                raise InputError(f"marker topic {marker_topic} is not in the bag; topics: {', '.join(sorted(topics))}")
            collected = _StreamCollector(bag, itopic, jtopic, channel_order, image_size)
            conns = [c for c in reader.connections if c.topic in (itopic, jtopic, marker_topic)]
            for conn, log_ns, msg in _messages(reader, conns, bag):
                if conn.topic == marker_topic:
                    collected.add_marker(msg, log_ns)
                elif conn.topic == itopic:
                    collected.add_image(msg, log_ns)
                else:
                    collected.add_joints(msg, log_ns)
    except EipltrtError:
        raise
    except Exception as exc:  # rosbags raises many types for corrupt/unsupported files
        reason = f"{type(exc).__name__}: {str(exc).rstrip('.')}"
        raise InputError(f"cannot read bag {bag}: {reason}. Check that the recording finished (metadata.yaml and "
                         f"the .mcap/.db3 are complete) or re-record it") from exc
    return collected.streams()
