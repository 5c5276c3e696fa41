"""What ``eipl-trt control`` hears from the node: its step times, attention points and diagnostics.

:class:`Listener` runs its own rclpy context in a thread beside the processes under test.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eipl_trt.errors import EipltrtError
from eipl_trt.sim.processes import tail

__all__ = ["Listener", "NODE_NAME"]

NODE_NAME = "eipl_trt"



@dataclass
class Listener:
    """This process's subscriptions to the node's outputs (an rclpy context spun in a thread)."""

    step_ms: list[float] = field(default_factory=list)
    points: dict[int, tuple[np.ndarray | None, np.ndarray | None]] = field(default_factory=dict)
    diagnostics: dict[str, dict[str, str]] = field(default_factory=dict)
    reports: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PolygonStamped
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import JointState

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("eipl_trt_control_listener", context=self.context)
        self.timing_sub = self.node.create_subscription(JointState, f"/{NODE_NAME}/timing", self._on_timing, 100)
        self.node.create_subscription(PolygonStamped, f"/{NODE_NAME}/enc_points", lambda m: self._on_points(m, 0), 100)
        self.node.create_subscription(PolygonStamped, f"/{NODE_NAME}/dec_points", lambda m: self._on_points(m, 1), 100)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            while self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except Exception:  # shutdown
            pass

    def _on_timing(self, msg: Any) -> None:
        values = dict(zip(msg.name, msg.position))
        with self.lock:
            if "step_ms" in values:
                self.step_ms.append(float(values["step_ms"]))

    def _on_points(self, msg: Any, which: int) -> None:
        stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
        pts = np.array([[p.x, p.y] for p in msg.polygon.points], dtype=np.float64)
        with self.lock:
            pair = list(self.points.get(stamp, (None, None)))
            pair[which] = pts
            self.points[stamp] = (pair[0], pair[1])

    def wait_for_node(self, node: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
        """Wait until the node's ``~/timing`` publisher has matched this listener.

        Discovery between two DDS participants can take seconds on a loaded machine (a missed
        announcement is repeated only every few seconds); started before it completes, an episode's
        first steps would be missing from the latency figures. Raises if the node exits or never matches.
        """
        deadline = time.monotonic() + timeout_s
        while self.timing_sub.get_publisher_count() == 0:
            if node.poll() is not None:
                raise EipltrtError(f"the node exited with code {node.returncode} before it published; "
                                   f"its log ({log}):\n{tail(log)}")
            if time.monotonic() > deadline:
                raise EipltrtError(f"the node's /{NODE_NAME}/timing publisher did not appear within {timeout_s:.0f} s "
                                   f"(check ROS_DOMAIN_ID and ROS_LOCALHOST_ONLY match); its log ({log}):\n{tail(log)}")
            time.sleep(0.05)

    def wait_reports(self, n: int, timeout_s: float) -> bool:
        """Wait until ``n`` more node reports arrived on /diagnostics (1 Hz); False on timeout."""
        with self.lock:
            target = self.reports + n
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if self.reports >= target:
                    return True
            time.sleep(0.05)
        return False

    def _on_diagnostics(self, msg: Any) -> None:
        with self.lock:
            self.reports += int(any(s.name.startswith(f"{NODE_NAME}:") for s in msg.status))
            for status in msg.status:
                if status.name.startswith(f"{NODE_NAME}:"):
                    values = {kv.key: kv.value for kv in status.values}
                    values["_level"] = str(int.from_bytes(status.level, "little") if isinstance(status.level, bytes)
                                           else int(status.level))
                    values["_message"] = status.message
                    self.diagnostics[status.name.split(":", 1)[1].strip()] = values

    def take(self) -> tuple[list[float], dict[int, Any], dict[str, dict[str, str]]]:
        """Everything collected since the last call (and forget it)."""
        with self.lock:
            out = (self.step_ms, self.points, self.diagnostics)
            self.step_ms, self.points, self.diagnostics = [], {}, {}
        return out

    def close(self) -> None:
        self.context.try_shutdown()
        self.thread.join(5.0)
        self.node.destroy_node()


