"""Record ROS 2 topics into a rosbag2 (MCAP, zstd chunks) from rclpy: ``ros2 bag record`` where it is missing.

The pip-installed ROS 2 wheels have no ``rosbag2_py`` and no ``ros2`` CLI, so a lab working from them
(and ``eipl-trt sim record``) records with this. Each topic is subscribed to *serialized* (rclpy's
``raw=True``): the CDR bytes go into the bag untouched, stamped with their receipt time, exactly as
``ros2 bag record`` stores them, through the same version-8 writer every distribution reads
(:func:`eipl_trt.bagio.compat.open_bag_writer`). The bag is written beside its final path and
renamed into place when the recording stops, so a crash leaves no half-written bag under that name.

Runs its own rclpy context in a thread, so it can live inside a process that also does other ROS work.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from eipl_trt.errors import EipltrtError, InputError

__all__ = ["BagRecorder"]

log = logging.getLogger(__name__)


def _msg_class(msgtype: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name``."""
    import importlib

    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


class BagRecorder:
    """Subscribe to ``topics`` (name -> ``pkg/msg/Type``) and write every message to a new bag at ``path``.

    Args:
        path: the bag directory to create; must not exist.
        topics: topic name -> message type, e.g. ``{"/joint_states": "sensor_msgs/msg/JointState"}``.
        latched: topics to subscribe to with transient-local durability (e.g. an episode announcement).
        use_sim_time: stamp messages with the latest ``/clock`` instead of the wall clock, as
            ``ros2 bag record --use-sim-time`` does (a simulation that publishes its own time).

    Use :meth:`start`, then :meth:`stop` (or a ``with`` block). :attr:`counts` says what was written.
    """

    def __init__(self, path: str | Path, topics: Mapping[str, str], latched: tuple[str, ...] = (),
                 use_sim_time: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise InputError(f"bag {self.path} already exists; choose another path or remove it")
        if not topics:
            raise InputError("nothing to record: give at least one topic")
        self.topics = dict(topics)
        self.latched = set(latched)
        self.counts: dict[str, int] = {t: 0 for t in self.topics}
        self._lock = threading.Lock()
        self._writer: Any = None
        self._tmp: Path | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.use_sim_time = bool(use_sim_time)
        self._clock_ns = 0

    def start(self) -> "BagRecorder":
        """Open the bag and the subscriptions; messages are written from now on."""
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from rosbags.typesys import Stores, get_typestore

        from eipl_trt.bagio.compat import open_bag_writer, recorded_qos

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent))
        typestore = get_typestore(Stores.ROS2_JAZZY)
        self._writer = open_bag_writer(self._tmp / self.path.name)
        self._writer.open()
        self._conns = {t: self._writer.add_connection(t, m, typestore=typestore, offered_qos_profiles=[recorded_qos()])
                       for t, m in self.topics.items()}
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("eipl_trt_recorder", context=self.context)
        for topic, msgtype in self.topics.items():
            durability = DurabilityPolicy.TRANSIENT_LOCAL if topic in self.latched else DurabilityPolicy.VOLATILE
            qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=durability)
            self.node.create_subscription(_msg_class(msgtype), topic, lambda raw, t=topic: self._write(t, raw), qos,
                                          raw=True)
        if self.use_sim_time:
            from rosgraph_msgs.msg import Clock

            self.node.create_subscription(Clock, "/clock", self._on_clock, QoSProfile(depth=10))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True, name="bag-recorder")
        self._thread.start()
        return self

    def _spin(self) -> None:
        try:
            while not self._stop.is_set():
                self.executor.spin_once(timeout_sec=0.05)
        except Exception:  # noqa: BLE001 - the context was shut down under us at exit
            pass

    def _on_clock(self, msg: object) -> None:
        self._clock_ns = msg.clock.sec * 1_000_000_000 + msg.clock.nanosec  # type: ignore[attr-defined]

    def _write(self, topic: str, raw: bytes) -> None:
        with self._lock:
            if self._writer is None:
                return
            stamp = self._clock_ns if self.use_sim_time and self._clock_ns else time.time_ns()
            self._writer.write(self._conns[topic], stamp, bytes(raw))
            self.counts[topic] += 1

    def matched(self, topic: str) -> int:
        """Publishers matched on ``topic`` (to wait until a recording can start)."""
        return self.node.count_publishers(topic)

    def stop(self) -> Path:
        """Stop the subscriptions, close the bag and move it to its path. Returns the path."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        try:
            self.executor.shutdown()
            self.node.destroy_node()
        finally:
            import rclpy

            rclpy.try_shutdown(context=self.context)
        with self._lock:
            writer, self._writer = self._writer, None
        assert self._tmp is not None
        try:
            writer.close()
            (self._tmp / self.path.name).rename(self.path)
        except OSError as exc:
            raise EipltrtError(f"could not finish bag {self.path}: {exc}; check free disk space") from exc
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
        log.info("recorded %s to %s", ", ".join(f"{n} {t}" for t, n in self.counts.items()), self.path)
        return self.path

    def __enter__(self) -> "BagRecorder":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
