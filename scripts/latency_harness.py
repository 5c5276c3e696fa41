#!/usr/bin/env python3
"""The publishing side of ``measure_node_latency.py``, run as its own process, and /proc readers.

``measure_node_latency.py`` starts this file as a child process (``latency_harness.py publish
...``) so the publisher's CPU time is neither the node's nor the receiver's, and each of the three
can be read apart from ``/proc/<pid>/stat``. The child reads one JSON command per line on stdin::

    {"phase": "steady", "camera_hz": 30, "joint_hz": 500, "duration": 60}

publishes ``sensor_msgs/Image`` (rgb8, prebuilt, only the stamp changes) on ``/image_raw`` at
``camera_hz`` and ``sensor_msgs/JointState`` on ``/joint_states`` at ``joint_hz`` on one absolute
schedule (no drift; a joint message due at the same instant as a frame goes first, so at equal
rates every frame has the joint state of its instant), both best effort (sensor-data QoS), and
answers one JSON line on stdout: the frame stamps (ns, system clock = the node's ROS time), the
number of joint messages, how late the publisher ran (ms) and its own CPU time (s). ``{"quit":
true}`` ends it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["proc_cpu_s", "rss_mb", "publisher_main"]

_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), s; NaN once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = text[text.rindex(")") + 2:].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14 and 15 of stat)


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` (VmRSS), MiB; NaN once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


class Publisher:
    """Prebuilt camera and joint messages and the publishers that send them."""

    def __init__(self, domain_id: int, width: int, height: int, joint_names: list[str], joint_values: list[float]):
        import numpy as np
        import rclpy
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image, JointState

        self.context = rclpy.context.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("latency_publisher", context=self.context)
        self.image_pub = self.node.create_publisher(Image, "/image_raw", qos_profile_sensor_data)
        self.joint_pub = self.node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        rng = np.random.default_rng(0)
        self.images = []
        for _ in range(8):  # distinct content, converted once: publish() only serializes
            msg = Image(height=height, width=width, encoding="rgb8", step=3 * width)
            msg.header.frame_id = "camera"
            msg.data = rng.integers(0, 255, (height, width, 3), dtype=np.uint8).tobytes()
            self.images.append(msg)
        self.joints = JointState(name=joint_names, position=joint_values)

    def run(self, camera_hz: float, joint_hz: float, duration_s: float) -> dict[str, Any]:
        """Publish both streams for ``duration_s``; returns the frame stamps and the publisher's lateness."""
        cpu0 = proc_cpu_s(os.getpid())
        cam_period, joint_period = 1.0 / camera_hz, 1.0 / joint_hz
        n_frames, n_joints = int(duration_s * camera_hz), int(duration_s * joint_hz)
        stamps: list[int] = []
        late_ms: list[float] = []
        i = j = 0
        start = time.perf_counter() + 0.01
        while i < n_frames or j < n_joints:
            t_frame = start + i * cam_period if i < n_frames else float("inf")
            t_joint = start + j * joint_period if j < n_joints else float("inf")
            due = min(t_frame, t_joint)
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            late_ms.append((time.perf_counter() - due) * 1e3)
            now_ns = time.time_ns()
            if t_joint <= t_frame:
                stamp = self.joints.header.stamp
                stamp.sec, stamp.nanosec = divmod(now_ns, 1_000_000_000)
                self.joint_pub.publish(self.joints)
                j += 1
            else:
                msg = self.images[i % len(self.images)]
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now_ns, 1_000_000_000)
                self.image_pub.publish(msg)
                stamps.append(now_ns)
                i += 1
        late_ms.sort()
        return {
            "stamps": stamps, "joint_msgs": j, "cpu_s": proc_cpu_s(os.getpid()) - cpu0,
            "late_ms_p99": late_ms[int(0.99 * (len(late_ms) - 1))] if late_ms else float("nan"),
            "late_ms_max": late_ms[-1] if late_ms else float("nan"),
        }

    def close(self) -> None:
        self.node.destroy_node()
        self.context.try_shutdown()


def publisher_main(argv: list[str]) -> int:
    """``publish DOMAIN_ID WIDTH HEIGHT NAMES_CSV VALUES_CSV``: serve JSON commands on stdin."""
    domain_id, width, height = int(argv[0]), int(argv[1]), int(argv[2])
    names = argv[3].split(",")
    values = [float(v) for v in argv[4].split(",")]
    pub = Publisher(domain_id, width, height, names, values)
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    try:
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd.get("quit"):
                break
            result = pub.run(float(cmd["camera_hz"]), float(cmd["joint_hz"]), float(cmd["duration"]))
            print(json.dumps({"phase": cmd.get("phase", ""), **result}), flush=True)
    finally:
        pub.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "publish":
        sys.exit(publisher_main(sys.argv[2:]))
    sys.exit(f"usage: {sys.argv[0]} publish DOMAIN_ID WIDTH HEIGHT NAMES_CSV VALUES_CSV (run by measure_node_latency.py)")
