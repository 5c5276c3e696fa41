"""Bags the package writes play on Humble, Jazzy and Kilted: their metadata against each reader.

No rosbag2 (C++) install exists here, so the readers are stand-ins: line-for-line transcriptions
of what rosbag2's YAML decoders ask of ``metadata.yaml`` (humble branch:
``rosbag2_storage/src/rosbag2_storage/metadata_io.cpp`` and, for ``ros2 bag play``,
``rosbag2_transport/src/rosbag2_transport/{player,qos}.cpp``; jazzy branch, which Kilted keeps:
``rosbag2_storage/include/rosbag2_storage/yaml.hpp`` and ``src/rosbag2_storage/qos.cpp``). They
are strict the way yaml-cpp is: ``as<std::string>()`` refuses a sequence or a map, ``as<uint64_t>``
refuses a non-integer, a missing key is an error. The negative tests show they refuse the files
the real readers refuse (version 9 on Humble, a null ``custom_data`` on Jazzy).
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

pytest.importorskip("rosbags")

from eipl_trt.bagio.compat import BAG_METADATA_VERSION, rewrite_bag  # noqa: E402
from eipl_trt.sim.bagwrite import BagEpisode, write_episodes_bag  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "pusher_sample"
#: sha256 over the sample bag's connections and (topic, log time, bytes) of every message; the
#: metadata rewrite to version 8 left it unchanged (3a35579d... before and after).
SAMPLE_CONTENT_SHA = "3a35579d7a6a6edf3b675dbbea7238839367837614307efbe7a35289d9b7d4cb"


class BadConversion(Exception):
    """What yaml-cpp throws (and rosbag2 reports as "Exception on parsing info file")."""


# ------------------------------------------------------------------ yaml-cpp's conversions (stand-in)
def _node(node: Any, key: str) -> Any:
    if not isinstance(node, dict) or key not in node:
        raise BadConversion(f"invalid node; key {key!r} missing")
    return node[key]


def as_string(node: Any, key: str) -> str:
    value = _node(node, key)
    if isinstance(value, (list, dict)) or value is None:
        raise BadConversion(f"bad conversion: {key} is a {type(value).__name__}, not a scalar")
    return str(value)


def as_uint64(node: Any, key: str) -> int:
    value = _node(node, key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise BadConversion(f"bad conversion: {key}={value!r} is not a uint64")
    return value


def as_int(node: Any, key: str) -> int:
    value = _node(node, key)
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
        raise BadConversion(f"bad conversion: {key}={value!r} is not an int")
    return value


def as_bool(node: Any, key: str) -> bool:
    value = _node(node, key)
    if not isinstance(value, bool):
        raise BadConversion(f"bad conversion: {key}={value!r} is not a bool")
    return value


def as_seq(node: Any, key: str) -> list[Any]:
    value = _node(node, key)
    if not isinstance(value, list):
        raise BadConversion(f"bad conversion: {key} is not a sequence")
    return value


def as_string_map(node: Any, key: str) -> dict[str, str]:
    value = _node(node, key)
    if not isinstance(value, dict):  # yaml-cpp: convert<unordered_map>::decode returns false unless IsMap()
        raise BadConversion(f"bad conversion: {key}={value!r} is not a map")
    return {str(k): as_string(value, k) for k in value}


def _time(node: Any, key: str, field: str) -> int:
    return as_uint64(_node(node, key), field)


# ------------------------------------------------------------------ the readers (stand-ins)
def humble_read_metadata(info: Any) -> dict[str, Any]:
    """Humble's ``convert<BagMetadata>::decode`` (rosbag2_storage 0.15, metadata_io.cpp)."""
    version = as_int(info, "version")
    out: dict[str, Any] = {"version": version, "storage_identifier": as_string(info, "storage_identifier"),
                           "duration": _time(info, "duration", "nanoseconds"),
                           "starting_time": _time(info, "starting_time", "nanoseconds_since_epoch"),
                           "message_count": as_uint64(info, "message_count"), "topics": []}
    for entry in as_seq(info, "topics_with_message_count"):
        topic = _node(entry, "topic_metadata")
        meta = {"name": as_string(topic, "name"), "type": as_string(topic, "type"),
                "serialization_format": as_string(topic, "serialization_format"),
                "offered_qos_profiles": as_string(topic, "offered_qos_profiles") if version >= 4 else ""}
        out["topics"].append((meta, as_uint64(entry, "message_count")))
    out["relative_file_paths"] = [str(p) for p in as_seq(info, "relative_file_paths")]
    if version >= 3:
        out["compression"] = (as_string(info, "compression_format"), as_string(info, "compression_mode"))
    if version >= 5:
        for f in as_seq(info, "files"):
            as_string(f, "path"), _time(f, "starting_time", "nanoseconds_since_epoch")
            _time(f, "duration", "nanoseconds"), as_uint64(f, "message_count")
    return out


def jazzy_read_metadata(info: Any) -> dict[str, Any]:
    """Jazzy's (and Kilted's) ``convert<BagMetadata>::decode`` (yaml.hpp) for versions up to 8."""
    version = as_int(info, "version")
    assert version <= 8, "this stand-in transcribes the version <= 8 branches only"
    out = humble_read_metadata(info)  # the shared fields decode the same way
    for entry in as_seq(info, "topics_with_message_count"):
        if version >= 7:
            as_string(_node(entry, "topic_metadata"), "type_description_hash")
    if version >= 6:
        out["custom_data"] = as_string_map(info, "custom_data")
    if version >= 8:
        out["ros_distro"] = as_string(info, "ros_distro")
    return out


def play_qos(offered_qos_profiles: str) -> list[dict[str, Any]]:
    """``ros2 bag play``'s parse of a topic's recorded offers (Humble player.cpp + qos.cpp;
    Jazzy's version <= 8 branch of qos.cpp asks the same integers)."""
    if not offered_qos_profiles:
        return []
    profiles = yaml.safe_load(offered_qos_profiles)
    if not isinstance(profiles, list):
        raise BadConversion("offered_qos_profiles is not a sequence of profiles")
    out = []
    for p in profiles:
        out.append({"history": as_int(p, "history"), "depth": as_int(p, "depth"),
                    "reliability": as_int(p, "reliability"), "durability": as_int(p, "durability"),
                    "liveliness": as_int(p, "liveliness"),
                    "avoid_ros_namespace_conventions": as_bool(p, "avoid_ros_namespace_conventions")})
        for key in ("deadline", "lifespan", "liveliness_lease_duration"):
            as_uint64(_node(p, key), "sec"), as_uint64(_node(p, key), "nsec")
    return out


def mcap_serialized_metadata(mcap_file: Path) -> Any:
    """The ``serialized_metadata`` of the MCAP's ``rosbag2`` metadata record (Jazzy's MCAP plugin decodes it)."""
    data = mcap_file.read_bytes()
    key = b"\x13\x00\x00\x00serialized_metadata"
    at = data.rindex(key) + len(key)
    (length,) = struct.unpack_from("<I", data, at)
    return yaml.safe_load(data[at + 4 : at + 4 + length].decode())


def check_every_reader(bag: Path) -> dict[str, Any]:
    """Assert the bag directory's metadata reads on Humble, Jazzy and Kilted and replays reliable."""
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["version"] == BAG_METADATA_VERSION == 8
    humble = humble_read_metadata(info)
    jazzy_read_metadata(info)
    for path in humble["relative_file_paths"]:
        assert (bag / path).is_file()
        if path.endswith(".mcap"):
            embedded = mcap_serialized_metadata(bag / path)
            assert embedded["version"] == 8
            jazzy_read_metadata(embedded)
    for meta, count in humble["topics"]:
        assert count > 0
        profiles = play_qos(meta["offered_qos_profiles"])
        assert [(p["reliability"], p["durability"]) for p in profiles] == [(1, 2)], meta["name"]  # reliable, volatile
    return humble


def content_sha(bag: Path) -> str:
    from rosbags.rosbag2 import Reader

    h = hashlib.sha256()
    with Reader(bag) as reader:
        for item in sorted((c.topic, c.msgtype, c.msgdef.data) for c in reader.connections):
            h.update(repr(item).encode())
        for topic, stamp, raw in sorted((c.topic, t, bytes(r)) for c, t, r in reader.messages()):
            h.update(topic.encode())
            h.update(stamp.to_bytes(8, "little"))
            h.update(raw)
    return h.hexdigest()


def _episode(n: int = 3) -> BagEpisode:
    rng = np.random.default_rng(0)
    return BagEpisode(image_times_s=np.arange(n) * 0.1, images=rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8),
                      joint_times_s=np.arange(2 * n) * 0.05, joint_positions=rng.normal(size=(2 * n, 2)))


# ------------------------------------------------------------------ tests
def test_sample_bag_reads_on_every_distribution() -> None:
    humble = check_every_reader(SAMPLE)
    assert {m["name"] for m, _ in humble["topics"]} == {"/camera/image_raw", "/joint_states"}
    assert humble["relative_file_paths"] == ["bag.mcap"]


def test_sample_bag_messages_unchanged_by_the_metadata_rewrite() -> None:
    assert content_sha(SAMPLE) == SAMPLE_CONTENT_SHA


def test_simulated_bag_reads_on_every_distribution(tmp_path: Path) -> None:
    write_episodes_bag(tmp_path / "sim", [_episode(), _episode()], joint_names=["a", "b"])
    humble = check_every_reader(tmp_path / "sim")
    assert sorted(count for _, count in humble["topics"]) == [6, 12]


def test_rewrite_bag_copies_messages_byte_for_byte(tmp_path: Path) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    # a bag as Jazzy's `ros2 bag record` writes it: version 9, QoS as a YAML list
    typestore = get_typestore(Stores.ROS2_JAZZY)
    string_t = typestore.types["std_msgs/msg/String"]
    with Writer(tmp_path / "jazzy", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/chatter", string_t.__msgtype__, typestore=typestore)
        for i in range(5):
            writer.write(conn, 1_000 + i, bytes(typestore.serialize_cdr(string_t(data=f"m{i}"), string_t.__msgtype__)))
    with pytest.raises(BadConversion, match="offered_qos_profiles"):
        humble_read_metadata(yaml.safe_load((tmp_path / "jazzy" / "metadata.yaml").read_text())
                             ["rosbag2_bagfile_information"])
    assert rewrite_bag(tmp_path / "jazzy", tmp_path / "humble") == 5
    check_every_reader(tmp_path / "humble")
    assert content_sha(tmp_path / "humble") == content_sha(tmp_path / "jazzy")


def test_stand_in_readers_refuse_what_the_real_ones_refuse(tmp_path: Path) -> None:
    write_episodes_bag(tmp_path / "sim", [_episode()], joint_names=["a", "b"])
    good = yaml.safe_load((tmp_path / "sim" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]

    v9 = {**good, "version": 9}
    v9["topics_with_message_count"] = [{**t, "topic_metadata": {**t["topic_metadata"], "offered_qos_profiles": []}}
                                       for t in good["topics_with_message_count"]]
    with pytest.raises(BadConversion):  # "yaml-cpp: ... bad conversion" on Humble
        humble_read_metadata(v9)
    with pytest.raises(BadConversion, match="custom_data"):  # rosbags writes null when it has none
        jazzy_read_metadata({**good, "custom_data": None})
    no_hash = {**good, "topics_with_message_count": [
        {**t, "topic_metadata": {k: v for k, v in t["topic_metadata"].items() if k != "type_description_hash"}}
        for t in good["topics_with_message_count"]]}
    humble_read_metadata(no_hash)  # Humble never reads it ...
    with pytest.raises(BadConversion, match="type_description_hash"):  # ... but Jazzy and Kilted do for v >= 7
        jazzy_read_metadata(no_hash)
    with pytest.raises(BadConversion):
        play_qos("- {history: keep_last, depth: 10}")  # names, not the integers Humble asks


def test_recoded_robot_like_bag_reads_on_every_distribution(tmp_path: Path) -> None:
    """`eipl-trt dataset recode` (JPEG frames, 500 Hz joint_states) writes the same metadata."""
    pytest.importorskip("cv2")
    from eipl_trt.bagio.recode import recode_bag

    write_episodes_bag(tmp_path / "sim", [_episode(), _episode()], joint_names=["a", "b"])
    recode_bag(tmp_path / "sim", tmp_path / "robot", joint_rate_hz=500.0)
    humble = check_every_reader(tmp_path / "robot")
    assert {m["type"] for m, _ in humble["topics"]} == {"sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/JointState"}
