"""Camera + joint episodes from rosbag2 bags or EIPL dataset directories, for offline evaluation.

Everything after reading works on plain numpy arrays, so evaluation runs without ROS:

* :func:`read_bag` reads one camera topic (``sensor_msgs/msg/Image`` in any encoding
  :mod:`eipl_trt.camera` converts, or ``sensor_msgs/msg/CompressedImage`` JPEG/PNG) and one
  ``sensor_msgs/msg/JointState`` topic from a rosbag2 (MCAP or sqlite3, via the pip ``rosbags``
  library, imported inside) into a :class:`BagStreams`, decoding frames with the very code the node
  uses. Times are header stamps (the bag's log time when a stamp is zero).
* :func:`resample` splits the streams into episodes at gaps (and at the messages of an optional
  marker topic) and samples each at the control rate: at every tick the latest image at or before
  the tick and the joints linearly interpolated between their two neighbouring messages.
* :func:`load_dataset_dir` reads an EIPL dataset split (``images.npy``/``joints.npy``).
* :func:`load_episodes` does either, depending on what ``path`` is.

JointState messages may carry extra joints, other orders, or only some joints (e.g. an arm and a
gripper published separately): positions are kept per name, NaN where a message lacked a joint,
and :func:`select_joints` picks the model's joints by name.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eipl_trt.camera import decode_message
from eipl_trt.errors import DatasetError, EipltrtError, InputError
from eipl_trt.imaging import resize_bilinear, to_channel_order

__all__ = [
    "IMAGE_TYPE", "COMPRESSED_TYPE", "JOINT_TYPE", "BagStreams", "Episode", "read_bag", "select_joints",
    "split_episodes", "resample", "load_dataset_dir", "load_episodes",
]

logger = logging.getLogger(__name__)

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
JOINT_TYPE = "sensor_msgs/msg/JointState"
_EPS_S = 1e-5  # stamp tolerance (s): float64 epoch seconds carry ~0.3 µs rounding
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
    """

    images: np.ndarray
    channel_order: str
    encoding: str
    joints: np.ndarray
    joint_names: tuple[str, ...]
    stamps: np.ndarray
    rate_hz: float
    source: str

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _bag_dir(path: Path) -> Path:
    if not path.exists():
        raise InputError(f"bag {path} does not exist; pass a rosbag2 directory (with metadata.yaml)")
    if path.is_file() and (path.parent / "metadata.yaml").is_file():
        return path.parent
    if not (path / "metadata.yaml").is_file():
        raise InputError(f"{path} is not a rosbag2 directory (no metadata.yaml); pass the directory "
                         f"`ros2 bag record` created, or reindex the bag")
    return path


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
            stamp, or log time without one), e.g. a ``std_msgs/msg/Empty`` published at each reset.

    Returns:
        The streams, sorted by stamp.

    Raises:
        InputError: missing/unreadable/corrupt bag, missing or ambiguous topic, wrong topic type,
            empty topic, unsupported encoding, undecodable or truncated frames, images changing size.
    """
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    bag = _bag_dir(Path(path))
    if channel_order not in (None, "rgb", "bgr"):
        raise InputError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    images: list[np.ndarray] = []
    image_t: list[float] = []
    joint_t: list[float] = []
    rows: list[tuple[np.ndarray, np.ndarray]] = []
    columns: dict[str, int] = {}
    markers: list[float] = []
    encoding = ""
    skipped = 0
    unstamped = [0]
    decode_s = 0.0
    try:
        with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_JAZZY)) as reader:
            topics = {c.topic: c.msgtype for c in reader.connections}
            itopic = _pick_topic(topics, (IMAGE_TYPE, COMPRESSED_TYPE), image_topic, "--image-topic")
            jtopic = _pick_topic(topics, (JOINT_TYPE,), joint_topic, "--joint-topic")
            if marker_topic is not None and marker_topic not in topics:
                raise InputError(f"marker topic {marker_topic} is not in the bag; topics: {', '.join(sorted(topics))}")
            conns = [c for c in reader.connections if c.topic in (itopic, jtopic, marker_topic)]
            for conn, log_ns, raw in reader.messages(connections=conns):
                msg = _deserialize(reader.typestore, raw, conn.msgtype)
                if conn.topic == marker_topic:
                    markers.append(_stamp(msg, log_ns, [0]) if hasattr(msg, "header") else log_ns * 1e-9)
                elif conn.topic == itopic:
                    started = time.perf_counter()
                    try:
                        decoded = decode_message(msg, channel_order or "rgb")
                    except InputError as exc:
                        raise InputError(f"image {len(images)} on {itopic} in {bag}: {exc}") from None
                    decode_s += time.perf_counter() - started
                    if not encoding:
                        encoding = getattr(msg, "encoding", None) or msg.format
                        channel_order = channel_order or ("bgr" if decoded.encoding.startswith("bgr") else "rgb")
                    img = to_channel_order(decoded.image, decoded.encoding, channel_order or "rgb")
                    if image_size is not None:
                        img = resize_bilinear(img, image_size)
                    if images and img.shape != images[0].shape:
                        raise InputError(f"images on {itopic} change size from {images[0].shape[:2]} to "
                                         f"{img.shape[:2]}; pass image_size to resize them all")
                    images.append(np.ascontiguousarray(img))
                    image_t.append(_stamp(msg, log_ns, unstamped))
                else:
                    names, pos = list(msg.name), np.asarray(msg.position, dtype=np.float64)
                    if not names or len(pos) != len(names):
                        skipped += 1
                        continue
                    idx = np.array([columns.setdefault(n, len(columns)) for n in names])
                    rows.append((idx, pos))
                    joint_t.append(_stamp(msg, log_ns, unstamped))
    except EipltrtError:
        raise
    except Exception as exc:  # rosbags raises many types for corrupt/unsupported files
        raise InputError(f"cannot read bag {bag}: {type(exc).__name__}: {exc}. Check that the recording "
                         f"finished (metadata.yaml and the .mcap/.db3 are complete) or re-record it") from exc
    if unstamped[0]:
        logger.info("%d messages in %s have a zero header stamp; used the bag's log time", unstamped[0], bag)
    logger.debug("decoded %d frames from %s in %.3f s", len(images), itopic, decode_s)
    if skipped:
        logger.warning("skipped %d JointState messages on %s without matching name/position arrays", skipped, jtopic)
    if not images:
        raise InputError(f"image topic {itopic} in {bag} has no messages")
    if not rows:
        raise InputError(f"joint topic {jtopic} in {bag} has no messages with joint positions")
    positions = np.full((len(rows), len(columns)), np.nan)
    for i, (idx, pos) in enumerate(rows):
        positions[i, idx] = pos
    io, jo = np.argsort(image_t, kind="stable"), np.argsort(joint_t, kind="stable")
    return BagStreams(
        path=str(bag), image_topic=itopic, joint_topic=jtopic,
        image_stamps=np.asarray(image_t)[io], images=np.stack(images)[io], encoding=encoding,
        channel_order=channel_order or "rgb", joint_stamps=np.asarray(joint_t)[jo],
        joint_names=tuple(columns), joint_positions=positions[jo],
        marker_stamps=np.sort(np.asarray(markers, dtype=np.float64)), decode_s=decode_s,
    )


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
