"""Reading rosbag2 bags (written here with rosbags) and EIPL dataset directories into episodes."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest

from eipl_trt.bagio import (
    load_dataset_dir,
    load_episodes,
    read_bag,
    resample,
    select_joints,
    split_episodes,
)
from eipl_trt.errors import DatasetError, InputError

rosbag2 = pytest.importorskip("rosbags.rosbag2")
typesys = pytest.importorskip("rosbags.typesys")

SerdeError = pytest.importorskip("rosbags.serde").SerdeError
TS = typesys.get_typestore(typesys.Stores.ROS2_JAZZY)
IMAGE = "sensor_msgs/msg/Image"
JOINTS = "sensor_msgs/msg/JointState"
T0_NS = 1_767_225_600 * 10**9  # 2026-01-01 00:00:00 UTC
T0 = T0_NS / 1e9
MS = 1_000_000  # ns


def _header(stamp_ns: int, frame: str = "") -> Any:
    time = TS.types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    return TS.types["std_msgs/msg/Header"](stamp=time, frame_id=frame)


def _image(stamp_ns: int, value: int, encoding: str = "rgb8", h: int = 4, w: int = 6, pad: int = 0) -> Any:
    """An image whose R channel is ``value`` (G 50, B 200); mono8 is ``value`` everywhere."""
    pixel = {"rgb8": [value, 50, 200], "bgr8": [200, 50, value], "mono8": [value],
             "rgba8": [value, 50, 200, 255]}.get(encoding, [value, 50, 200])
    row = np.tile(np.array(pixel, np.uint8), w)
    step = row.size + pad
    data = np.zeros((h, step), np.uint8)
    data[:, : row.size] = row
    return TS.types[IMAGE](header=_header(stamp_ns, "camera_optical_frame"), height=h, width=w,
                           encoding=encoding, is_bigendian=0, step=step, data=data.reshape(-1))


def _joints(stamp_ns: int, names: Sequence[str], positions: Sequence[float]) -> Any:
    pos = np.asarray(positions, np.float64)
    return TS.types[JOINTS](header=_header(stamp_ns), name=list(names), position=pos,
                            velocity=np.zeros_like(pos), effort=np.zeros_like(pos))


def _write(path: Path, entries: Sequence[tuple[str, str, int, Any]], topics: Sequence[tuple[str, str]] = ()) -> Path:
    """Write ``(topic, msgtype, log_ns, message or raw CDR bytes)`` entries into a new MCAP bag."""
    with rosbag2.Writer(path, version=9, storage_plugin=rosbag2.StoragePlugin.MCAP) as writer:
        conns: dict[str, Any] = {}
        for topic, msgtype in [*topics, *((e[0], e[1]) for e in entries)]:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=TS)
        for topic, msgtype, log_ns, msg in sorted(entries, key=lambda e: e[2]):
            raw = msg if isinstance(msg, bytes) else bytes(TS.serialize_cdr(msg, msgtype))
            writer.write(conns[topic], log_ns, raw)
    return path


def _q(t: float) -> tuple[float, float]:
    """Joint values at time t (s since T0): j1 = t², j2 = -2t."""
    return t * t, -2.0 * t


@pytest.fixture()
def two_episode_bag(tmp_path: Path) -> Path:
    """Episode A: images 20 Hz from +4 ms (value 10+i), joints 100 Hz ["extra", "j2", "j1"].

    Episode B, 3 s later: images 10 Hz from 4.0 s (value 100+i), joints 50 Hz ["j1", "extra", "j2"].
    Messages are logged 7 ms after their stamps.
    """
    entries: list[tuple[str, str, int, Any]] = []
    for i in range(21):  # 0.004 .. 1.004 s
        stamp = T0_NS + 4 * MS + i * 50 * MS
        entries.append(("/camera/image_raw", IMAGE, stamp + 7 * MS, _image(stamp, 10 + i)))
    for k in range(100):  # 0.00 .. 0.99 s
        t = k * 0.01
        j1, j2 = _q(t)
        entries.append(("/joint_states", JOINTS, T0_NS + k * 10 * MS + 7 * MS,
                        _joints(T0_NS + k * 10 * MS, ["extra", "j2", "j1"], [99.0, j2, j1])))
    for i in range(6):  # 4.0 .. 4.5 s
        stamp = T0_NS + 4000 * MS + i * 100 * MS
        entries.append(("/camera/image_raw", IMAGE, stamp + 7 * MS, _image(stamp, 100 + i, pad=2)))
    for k in range(26):  # 4.00 .. 4.50 s
        t = 4.0 + k * 0.02
        j1, j2 = _q(t)
        stamp = T0_NS + 4000 * MS + k * 20 * MS
        entries.append(("/joint_states", JOINTS, stamp + 7 * MS, _joints(stamp, ["j1", "extra", "j2"], [j1, -1.0, j2])))
    return _write(tmp_path / "two", entries)


def test_resample_splits_two_episodes_and_samples_at_10_hz(two_episode_bag: Path) -> None:
    streams = read_bag(two_episode_bag)
    assert streams.image_topic == "/camera/image_raw" and streams.joint_topic == "/joint_states"
    assert streams.images.shape == (27, 4, 6, 3) and streams.joint_positions.shape == (126, 3)
    assert streams.joint_names == ("extra", "j2", "j1")
    assert streams.image_stamps[0] == pytest.approx(T0 + 0.004, abs=1e-6)  # header stamp, not log time
    eps = resample(streams, 10.0, joint_names=["j1", "j2"])
    assert [len(e) for e in eps] == [10, 6]
    a, b = eps
    np.testing.assert_allclose(a.stamps - T0, 0.004 + 0.1 * np.arange(10), atol=1e-6)
    np.testing.assert_allclose(b.stamps - T0, 4.0 + 0.1 * np.arange(6), atol=1e-6)
    # latest image at or before each tick: A's ticks hit every 2nd 20 Hz frame exactly
    np.testing.assert_array_equal(a.images[:, 0, 0], [[10 + 2 * k, 50, 200] for k in range(10)])
    np.testing.assert_array_equal(b.images[:, 0, 0, 0], 100 + np.arange(6))
    # j1 = t² at 0.104 s lies between samples at 0.10 and 0.11: 0.01 + 0.4 * (0.0121 - 0.01)
    assert a.joints[1, 0] == pytest.approx(0.01084, abs=1e-7)  # stamps are float64 epoch s (~0.2 µs)
    t = 0.004 + 0.1 * np.arange(10)
    lower = np.floor(t * 100 + 1e-9) / 100
    np.testing.assert_allclose(a.joints[:, 0], lower**2 + (t - lower) / 0.01 * ((lower + 0.01) ** 2 - lower**2), atol=1e-7)
    np.testing.assert_allclose(a.joints[:, 1], -2.0 * t, atol=1e-7)  # linear joint is exact
    np.testing.assert_allclose(b.joints, np.stack(_q(4.0 + 0.1 * np.arange(6)), axis=1), atol=1e-7)
    assert a.joint_names == ("j1", "j2") and a.channel_order == "rgb" and a.encoding == "rgb8"
    assert a.rate_hz == 10.0 and a.source == "two episode 0"


def test_resample_drops_short_episodes_and_fails_when_none_remain(two_episode_bag: Path, caplog: Any) -> None:
    streams = read_bag(two_episode_bag)
    with caplog.at_level(logging.WARNING):
        eps = resample(streams, 10.0, min_samples=7)
    assert [len(e) for e in eps] == [10] and "dropping a 6-sample episode" in caplog.text
    with pytest.raises(InputError, match="no episode .* has 50 or more samples"):
        resample(streams, 10.0, min_samples=50)


def test_small_gap_threshold_splits_inside_an_episode(two_episode_bag: Path) -> None:
    eps = resample(read_bag(two_episode_bag), 10.0, gap_s=0.06)  # B's 10 Hz images are 0.1 s apart
    assert [len(e) for e in eps] == [10]


def test_split_episodes() -> None:
    assert split_episodes(np.array([0.0, 0.1, 0.2, 5.0, 5.1]), 1.0) == [slice(0, 3), slice(3, 5)]
    assert split_episodes(np.array([0.0, 2.0, 4.0]), 1.0) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    assert split_episodes(np.array([]), 1.0) == []


def test_select_joints_by_name_and_missing_joint_error() -> None:
    pos = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(select_joints(["a", "b", "c"], pos, ["c", "a"]), [[3.0, 1.0], [6.0, 4.0]])
    with pytest.raises(InputError, match=r"joint\(s\) j9, j8 not found; the joint states have: a, b, c"):
        select_joints(["a", "b", "c"], pos, ["a", "j9", "j8"])


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "rgba8"])
def test_encodings_are_converted_to_the_requested_order(tmp_path: Path, encoding: str) -> None:
    entries = [("/cam", IMAGE, T0_NS + i * 100 * MS, _image(T0_NS + i * 100 * MS, 7 + i, encoding, pad=1))
               for i in range(3)]
    entries += [("/js", JOINTS, T0_NS + i * 100 * MS, _joints(T0_NS + i * 100 * MS, ["a"], [i])) for i in range(3)]
    rgb = read_bag(_write(tmp_path / "b", entries), channel_order="rgb")
    expected = [7, 7, 7] if encoding == "mono8" else [7, 50, 200]
    np.testing.assert_array_equal(rgb.images[0, 2, 3], expected)
    assert rgb.encoding == encoding and rgb.channel_order == "rgb"
    native = read_bag(tmp_path / "b")
    assert native.channel_order == ("bgr" if encoding == "bgr8" else "rgb")
    np.testing.assert_array_equal(native.images[0, 0, 0], expected[::-1] if encoding == "bgr8" else expected)


def test_zero_header_stamp_falls_back_to_log_time_and_images_resize(tmp_path: Path) -> None:
    entries = [("/cam", IMAGE, T0_NS + 500 * MS + i * 100 * MS, _image(0, i)) for i in range(3)]
    entries += [("/js", JOINTS, T0_NS + i * 100 * MS, _joints(T0_NS + i * 100 * MS, ["a"], [i])) for i in range(9)]
    streams = read_bag(_write(tmp_path / "b", entries), image_size=(2, 3))
    np.testing.assert_allclose(streams.image_stamps - T0, [0.5, 0.6, 0.7], atol=1e-6)
    assert streams.images.shape == (3, 2, 3, 3)


def test_rclpy_serialized_joint_state_with_empty_velocity_reads(tmp_path: Path) -> None:
    pytest.importorskip("rclpy")
    serialization = pytest.importorskip("rclpy.serialization")
    msgs = pytest.importorskip("sensor_msgs.msg")
    entries: list[tuple[str, str, int, Any]] = []
    for i in range(5):
        msg = msgs.JointState()
        msg.header.stamp.sec = T0_NS // 10**9
        msg.header.stamp.nanosec = i * 100 * MS
        msg.name = ["a", "bb"]
        msg.position = [0.5 * i, -1.0]
        raw = serialization.serialize_message(msg)  # Fast-CDR: velocity/effort empty -> padded
        with pytest.raises(SerdeError, match="size mismatch"):  # the gotcha this test is about
            TS.deserialize_cdr(raw, JOINTS)
        entries.append(("/js", JOINTS, T0_NS + i * 100 * MS, raw))
        entries.append(("/cam", IMAGE, T0_NS + i * 100 * MS, _image(T0_NS + i * 100 * MS, i)))
    streams = read_bag(_write(tmp_path / "b", entries))
    np.testing.assert_allclose(streams.joint_positions, [[0.5 * i, -1.0] for i in range(5)])
    np.testing.assert_allclose(streams.joint_stamps - T0, 0.1 * np.arange(5), atol=1e-6)


def _two_cams(tmp_path: Path) -> Path:
    entries = [("/cam_a", IMAGE, T0_NS, _image(T0_NS, 1)), ("/cam_b", IMAGE, T0_NS, _image(T0_NS, 2)),
               ("/js", JOINTS, T0_NS, _joints(T0_NS, ["a"], [0.0]))]
    return _write(tmp_path / "two_cams", entries)


def test_two_image_topics_need_a_flag(tmp_path: Path) -> None:
    bag = _two_cams(tmp_path)
    with pytest.raises(InputError, match=r"several sensor_msgs/msg/Image topics \(/cam_a, /cam_b\); choose one with --image-topic"):
        read_bag(bag)
    assert read_bag(bag, image_topic="/cam_b").images[0, 0, 0, 0] == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_topic": "/nope"}, r"topic /nope is not in the bag; topics: /cam_a \(sensor_msgs/msg/Image\)"),
        ({"image_topic": "/cam_a", "joint_topic": "/cam_b"}, "topic /cam_b has type sensor_msgs/msg/Image, expected sensor_msgs/msg/JointState"),
        ({"image_topic": "/cam_a", "channel_order": "yuv"}, "channel_order must be 'rgb' or 'bgr'"),
    ],
)
def test_topic_errors(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        read_bag(_two_cams(tmp_path), **kwargs)


def test_empty_bags_and_unknown_encoding(tmp_path: Path) -> None:
    empty = _write(tmp_path / "empty", [], topics=[("/cam", IMAGE), ("/js", JOINTS)])
    with pytest.raises(InputError, match="image topic /cam in .* has no messages"):
        read_bag(empty)
    nothing = _write(tmp_path / "nothing", [])
    with pytest.raises(InputError, match="no sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage topic in the "
                                         "bag; topics: none"):
        read_bag(nothing)
    nv12 = _write(tmp_path / "nv12", [("/cam", IMAGE, T0_NS, _image(T0_NS, 1, "nv12")),
                                      ("/js", JOINTS, T0_NS, _joints(T0_NS, ["a"], [0.0]))])
    with pytest.raises(InputError, match="image 0 on /cam in .*unsupported image encoding 'nv12'"):
        read_bag(nv12)


COMPRESSED = "sensor_msgs/msg/CompressedImage"


def _compressed(stamp_ns: int, rgb: np.ndarray, ext: str = ".jpg", fmt: str = "rgb8; jpeg compressed bgr8") -> Any:
    cv2 = pytest.importorskip("cv2")
    data = cv2.imencode(ext, np.ascontiguousarray(rgb[:, :, ::-1]))[1].reshape(-1)
    return TS.types[COMPRESSED](header=_header(stamp_ns, "camera_optical_frame"), format=fmt, data=data)


def test_compressed_topics_decode_like_the_node_and_raw_is_preferred(tmp_path: Path) -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 50, 200
    js = ("/js", JOINTS, T0_NS, _joints(T0_NS, ["a"], [0.0]))
    png = _write(tmp_path / "png", [("/cam/compressed", COMPRESSED, T0_NS, _compressed(T0_NS, rgb, ".png")), js])
    streams = read_bag(png)
    assert streams.image_topic == "/cam/compressed" and streams.encoding == "rgb8; jpeg compressed bgr8"
    assert streams.channel_order == "bgr" and streams.images[0, 0, 0].tolist() == [200, 50, 10]
    assert read_bag(png, channel_order="rgb").images[0, 0, 0].tolist() == [10, 50, 200]
    assert streams.decode_s > 0
    both = _write(tmp_path / "both", [("/cam", IMAGE, T0_NS, _image(T0_NS, 10)),
                                      ("/cam/compressed", COMPRESSED, T0_NS, _compressed(T0_NS, rgb)), js])
    assert read_bag(both).image_topic == "/cam"  # recorded with -a: the raw frames win
    jpeg = read_bag(both, image_topic="/cam/compressed", channel_order="rgb").images[0]
    assert np.abs(jpeg.astype(int) - rgb).max() <= 3


def test_truncated_compressed_frames_are_a_clear_error(tmp_path: Path) -> None:
    msg = _compressed(T0_NS, np.full((8, 8, 3), 90, np.uint8))
    msg.data = msg.data[: msg.data.size // 2]
    bag = _write(tmp_path / "cut", [("/cam", COMPRESSED, T0_NS, msg), ("/js", JOINTS, T0_NS, _joints(T0_NS, ["a"], [0.0]))])
    with pytest.raises(InputError, match="image 0 on /cam in .*no end-of-image marker"):
        read_bag(bag)


def test_marker_topic_splits_episodes(tmp_path: Path) -> None:
    """One continuous 2 s recording (no gap) with an Empty marker at 1.0 s: two episodes."""
    entries: list[tuple[str, str, int, Any]] = []
    for i in range(21):
        stamp = T0_NS + i * 100 * MS
        entries.append(("/cam", IMAGE, stamp, _image(stamp, i)))
        entries.append(("/js", JOINTS, stamp, _joints(stamp, ["a"], [i * 0.1])))
    entries.append(("/episode", "std_msgs/msg/Empty", T0_NS + 1000 * MS - 2 * MS, TS.types["std_msgs/msg/Empty"]()))
    bag = _write(tmp_path / "marked", entries)
    assert len(resample(read_bag(bag), 10.0)) == 1
    marked = read_bag(bag, marker_topic="/episode")
    np.testing.assert_allclose(marked.marker_stamps, [T0 + 0.998])
    first, second = resample(marked, 10.0)
    assert len(first) == 10 and len(second) == 11
    assert first.images[-1, 0, 0, 0] == 9 and second.images[0, 0, 0, 0] == 10
    np.testing.assert_allclose(second.joints[0], [1.0])
    with pytest.raises(InputError, match="marker topic /nope is not in the bag"):
        read_bag(bag, marker_topic="/nope")


def test_a_json_marker_starts_its_episode_at_its_start_s(tmp_path: Path) -> None:
    """``/sim/episode`` is a String with the episode's ``start_s``: that, not its log time, cuts the episodes.

    A recorder on simulated time logs it with the latest ``/clock`` it has seen, which can still be the
    previous episode's last frame (a race between two topics); by log time the cut would move that frame
    into the next episode.
    """
    entries: list[tuple[str, str, int, Any]] = []
    for i in range(21):
        stamp = T0_NS + i * 100 * MS
        entries.append(("/cam", IMAGE, stamp, _image(stamp, i)))
        entries.append(("/js", JOINTS, stamp, _joints(stamp, ["a"], [i * 0.1])))
    string = TS.types["std_msgs/msg/String"]
    late_clock = T0_NS + 900 * MS  # the last frame of the first episode
    entries.append(("/sim/episode", "std_msgs/msg/String", late_clock, string(data=json.dumps(
        {"event": "start", "index": 1, "start_s": T0 + 1.0}))))
    bag = _write(tmp_path / "json_marker", entries)
    marked = read_bag(bag, marker_topic="/sim/episode")
    np.testing.assert_allclose(marked.marker_stamps, [T0 + 1.0])
    first, second = resample(marked, 10.0)
    assert len(first) == 10 and len(second) == 11 and second.images[0, 0, 0, 0] == 10

    # a String that is not such JSON (or whose start_s is not a positive number) keeps its log time
    for n, data in enumerate(("reset", json.dumps({"start_s": "soon"}), json.dumps([1.0]),
                              json.dumps({"start_s": float("nan")}), json.dumps({"start_s": -1.0}))):
        other = _write(tmp_path / f"plain{n}", entries[:-1] + [("/m", "std_msgs/msg/String", late_clock,
                                                                        string(data=data))])
        np.testing.assert_allclose(read_bag(other, marker_topic="/m").marker_stamps, [T0 + 0.9])


def test_missing_not_a_bag_and_corrupt_bags(tmp_path: Path, two_episode_bag: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_bag(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match="not a rosbag2 directory"):
        read_bag(tmp_path / "plain")
    mcap = two_episode_bag / "two.mcap"
    assert read_bag(mcap).images.shape[0] == 27  # a storage file resolves to its bag directory
    data = bytearray(mcap.read_bytes())
    mcap.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(InputError, match=r"cannot read bag .*two.*re-record"):
        read_bag(two_episode_bag)


@pytest.fixture()
def small_bag(tmp_path: Path) -> Path:
    """A bag as the simulator records it: 5 frames and 5 joint states of joints a, b."""
    from eipl_trt.sim.bagwrite import BagEpisode, write_episodes_bag

    t = np.arange(5) / 10.0
    frames = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((1, 8, 8, 3), np.uint8)
    write_episodes_bag(tmp_path / "bag", [BagEpisode(t, frames, t, np.stack([t, -t], 1))], joint_names=["a", "b"])
    assert read_bag(tmp_path / "bag").joint_names == ("a", "b")
    return tmp_path / "bag"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("rosbag2_bagfile_information: {version: 9, storage_identifier: mc", r"ParserError"),
        ("", r"it is empty"),
        ("\x00\x00\x00", r"ReaderError|ParserError|ScannerError"),
        ("ros_distro: jazzy\n", r"it has no rosbag2_bagfile_information mapping"),
    ],
    ids=["cut-short", "empty", "binary", "other-yaml"],
)
def test_corrupt_metadata_is_named_with_the_fix(small_bag: Path, text: str, why: str) -> None:
    (small_bag / "metadata.yaml").write_text(text)
    with pytest.raises(InputError, match=rf"{small_bag}/metadata.yaml is not a valid rosbag2 metadata file \(({why})"
                                         rf".*`ros2 bag reindex {small_bag}` rebuilds it"):
        read_bag(small_bag)


def _copy_with(src: Path, dst: Path, topic: str, index: int, edit: Any) -> Path:
    """``src`` rewritten message by message into ``dst``, with ``edit(raw CDR)`` applied to one message of ``topic``."""
    from rosbags.highlevel import AnyReader

    entries, seen = [], 0
    with AnyReader([src], default_typestore=TS) as reader:
        for conn, log_ns, raw in reader.messages():
            raw = bytes(raw)
            if conn.topic == topic:
                raw = edit(raw) if seen == index else raw
                seen += 1
            entries.append((conn.topic, conn.msgtype, log_ns, raw))
    return _write(dst, entries)


@pytest.mark.parametrize(
    ("topic", "edit", "why"),
    [
        ("/joint_states", lambda raw: raw[: len(raw) // 2], r"SerdeError: Invalid sequence length"),
        ("/joint_states", lambda raw: raw.replace(b"\x02\x00\x00\x00a\x00", b"\x02\x00\x00\x00\xff\x00", 1),
         r"SerdeError: .*'utf-8' codec can't decode"),
        ("/camera/image_raw", lambda raw: raw[:40], r"SerdeError"),
    ],
    ids=["joint-state-cut-short", "joint-name-not-utf8", "image-cut-short"],
)
def test_corrupt_cdr_payload_names_the_message(small_bag: Path, tmp_path: Path, topic: str, edit: Any,
                                               why: str) -> None:
    bag = _copy_with(small_bag, tmp_path / "damaged", topic, 2, edit)
    msgtype = JOINTS if topic == "/joint_states" else IMAGE
    with pytest.raises(InputError, match=rf"message 2 on {topic} \({msgtype}, logged at [0-9.]+ s\) in {bag} is not a "
                                         rf"valid CDR payload \({why}.*\); the recording is damaged: re-record it"):
        read_bag(bag)


def _dataset(root: Path, n: int = 2, t: int = 5, meta: dict[str, Any] | None = None) -> Path:
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        images = np.zeros((n, t, 8, 8, 3), np.uint8)
        images[:, :, 0, 0, 0] = np.arange(n * t).reshape(n, t)
        np.save(root / split / "images.npy", images)
        np.save(root / split / "joints.npy", np.arange(n * t * 3, dtype=np.float32).reshape(n, t, 3))
    np.save(root / "joint_bounds.npy", np.array([[0, 0, 0], [1, 1, 1]], np.float32))
    if meta is not None:
        (root / "dataset.json").write_text(json.dumps(meta))
    return root


def test_load_dataset_dir(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds", meta={"joint_names": ["a", "b", "c"], "rate_hz": 20.0, "channel_order": "bgr"})
    eps = load_dataset_dir(root, "test")
    assert len(eps) == 2 and eps[1].images.shape == (5, 8, 8, 3) and eps[1].images[2, 0, 0, 0] == 7
    np.testing.assert_allclose(eps[0].stamps, np.arange(5) / 20.0)
    assert eps[0].joint_names == ("a", "b", "c") and eps[0].channel_order == "bgr" and eps[0].rate_hz == 20.0
    picked = load_dataset_dir(root, "train", joint_names=["c", "a"])
    np.testing.assert_array_equal(picked[0].joints[1], [5.0, 3.0])
    assert load_episodes(root, split="train")[0].source == "ds/train episode 0"


def test_load_dataset_dir_errors(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds")
    assert load_dataset_dir(root)[0].channel_order == "rgb"  # no dataset.json: defaults
    with pytest.raises(DatasetError, match=r"names no joints .* has 3 joint columns, but 1 joints were asked"):
        load_dataset_dir(root, joint_names=["a"])
    unnamed = load_dataset_dir(root, joint_names=["c", "b", "a"])  # no names: taken in the order asked for
    assert unnamed[0].joint_names == ("c", "b", "a")
    np.testing.assert_array_equal(unnamed[0].joints, load_dataset_dir(root)[0].joints)
    with pytest.raises(InputError, match="missing .*val/images.npy"):
        load_episodes(root, split="val")
    np.save(root / "test" / "joints.npy", np.zeros((2, 4, 3), np.float32))
    with pytest.raises(InputError, match="inconsistent shapes"):
        load_dataset_dir(root)
    (root / "dataset.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot parse"):
        load_dataset_dir(root, "train")
