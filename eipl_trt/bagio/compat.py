"""rosbag2 files that Humble, Jazzy and Kilted all read: metadata version 8, string QoS profiles.

rosbag2's metadata (``metadata.yaml``, and a copy inside an MCAP file) changed shape across
distributions. Humble (rosbag2 0.15) reads ``offered_qos_profiles`` as a YAML *string* and fails
("yaml-cpp: ... bad conversion") on version 9's YAML *list*; Jazzy and Kilted read version 8 the way
Humble wrote it. Version 8 also needs ``type_description_hash`` (Jazzy and Kilted read it for
version >= 7; Humble ignores keys it does not know), ``custom_data`` as a map (>= 6: a ``null``
there is a bad conversion too) and ``ros_distro`` (>= 8). :func:`open_bag_writer` gives a
``rosbags`` writer set up that way; :func:`rewrite_bag` copies a bag's messages byte for byte into
such a file. ``rosbags`` is imported inside the functions (the ``bags`` extra).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from eipl_trt import __version__
from eipl_trt.common.atomic import replace_atomic
from eipl_trt.errors import EipltrtError, InputError

__all__ = ["BAG_METADATA_VERSION", "RMW_DURATION_INFINITE", "open_bag_writer", "recorded_qos", "rewrite_bag"]

#: rosbag2 metadata version of every bag the package writes (see the module docstring).
BAG_METADATA_VERSION = 8

#: ``RMW_DURATION_INFINITE`` as (sec, nsec): what ``ros2 bag record`` stores for a publisher
#: without deadline, lifespan or liveliness lease.
RMW_DURATION_INFINITE = (9223372036, 854775807)


def recorded_qos() -> Any:
    """The offered QoS ``ros2 bag record`` stores for a default publisher (reliable, volatile).

    A default publisher (and rclpy's ``qos_profile_sensor_data`` subscriber, which takes reliable
    offers) replays it; ``ros2 bag play`` in every distribution uses the recorded reliability and
    durability and its own history depth.
    """
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    infinite = QosTime(*RMW_DURATION_INFINITE)
    return Qos(
        history=QosHistory.UNKNOWN, depth=0, reliability=QosReliability.RELIABLE,
        durability=QosDurability.VOLATILE, deadline=infinite, lifespan=infinite,
        liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=infinite,
        avoid_ros_namespace_conventions=False,
    )


def open_bag_writer(path: str | os.PathLike[str], *, compress: bool = True) -> Any:
    """A ``rosbags`` MCAP writer for ``path`` that writes version-8 metadata every distribution reads.

    Add connections with ``offered_qos_profiles=[recorded_qos()]`` (an empty list is written as an
    empty string, which every distribution also reads, but a real bag has a profile per topic).

    Args:
        path: the bag directory to create (must not exist).
        compress: zstd-compressed MCAP chunks (what rosbag2's MCAP plugin writes by default).

    Returns:
        An unopened ``rosbags.rosbag2.Writer``; use it as a context manager.
    """
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

    writer = Writer(Path(path), version=BAG_METADATA_VERSION, storage_plugin=StoragePlugin.MCAP)
    if compress:
        writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    writer.set_custom_data("eipl_trt.writer", f"eipl_trt {__version__}")  # custom_data must be a map
    return writer


def rewrite_bag(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> int:
    """Copy every message of the rosbag2 ``src`` into a new bag ``dst`` with version-8 metadata.

    Topics, types, message definitions, log times and serialized bytes are copied unchanged; only
    the container (MCAP, zstd chunks) and its metadata are written anew. ``dst`` appears complete
    or not at all.

    Returns:
        The number of messages copied.

    Raises:
        InputError: ``src`` is not a readable rosbag2 or ``dst`` exists.
        EipltrtError: ``dst`` could not be written.
    """
    from rosbags.rosbag2 import Reader

    source, target = Path(src), Path(dst)
    if target.exists():
        raise InputError(f"{target} already exists; remove it or choose another path")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    count = 0
    try:
        try:
            reader = Reader(source)
            reader.open()
        except Exception as exc:  # rosbags raises its own ReaderError and OSError
            raise InputError(f"cannot read bag {source}: {exc}") from exc
        try:
            with open_bag_writer(tmp / target.name) as writer:
                conns = {}
                for conn in reader.connections:
                    conns[conn.id] = writer.add_connection(
                        conn.topic, conn.msgtype, msgdef=conn.msgdef.data, rihs01=conn.digest,
                        offered_qos_profiles=[recorded_qos()],
                    )
                for conn, stamp, raw in reader.messages():
                    writer.write(conns[conn.id], stamp, raw)
                    count += 1
        finally:
            reader.close()
        replace_atomic(tmp / target.name, target)
    except OSError as exc:
        raise EipltrtError(f"could not write bag {target}: {exc}; check free disk space and permissions") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return count
