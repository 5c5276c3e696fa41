"""``trajectory_timing: frame`` over real DDS: a joint_trajectory point is due at its frame's stamp + 1/rate.

The test stamps every frame 40 ms in the past (a camera with 40 ms of transport delay); with
``trigger: image`` the node steps on each and the point it sends must fall due 100 - 40 ms - the
step's own time after sending, not 100 ms (``trajectory_timing: period``, checked in
``test_node_convert.py``).
"""

from __future__ import annotations

import array
import time
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory

from eipl_trt.ros.convert import s_to_stamp
from model_cache import make_test_model  # exported by torch, or copied from the cache where torch is missing
from eipl_trt.ros.trajectory import MIN_LEAD_FRACTION
from ros_helpers import NodeProcess, RosClient, new_domain_id, wait_for, write_params

pytestmark = pytest.mark.ros

DELAY_S = 0.04


def test_frame_timing_makes_the_point_due_one_period_after_the_frame(tmp_path: Path) -> None:
    model = tmp_path / "sarnn"
    make_test_model("sarnn", model, seed=4, joint_dim=6, rate_hz=10.0)
    domain = new_domain_id()
    params = write_params(tmp_path / "params.yaml", backend="onnxruntime", command_interface="joint_trajectory",
                          trigger="image", trajectory_timing="frame")
    node = NodeProcess(tmp_path / "node.log", domain, params, ["-p", f"model:={model}"])
    client = RosClient(domain)
    try:
        commands = client.collect(JointTrajectory, "/joint_trajectory_controller/joint_trajectory")
        timings = client.collect(JointState, "/eipl_trt/timing")
        commands.wait_matched()
        timings.wait_matched()
        images = client.publisher(Image, "image_raw")
        joints = client.publisher(JointState, "joint_states")
        names = [f"joint_{i}" for i in range(6)]
        pixels = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
        deadline = time.monotonic() + 30.0
        while len(commands.snapshot()) < 5 and time.monotonic() < deadline:
            now = time.time()
            joints.publish(JointState(header=Header(stamp=s_to_stamp(now)), name=names, position=[0.1] * 6))
            images.publish(Image(header=Header(stamp=s_to_stamp(now - DELAY_S), frame_id="cam"), height=96, width=128,
                                 encoding="rgb8", step=384, data=array.array("B", pixels.tobytes())))
            time.sleep(0.1)
        got = commands.snapshot()
        assert len(got) >= 5, node.log()[-3000:]
        leads = [p.points[0].time_from_start.sec + p.points[0].time_from_start.nanosec * 1e-9 for p in got]
        # due at stamp + 0.1 s = 60 ms after the frame was published, less the step and DDS time
        assert all(lead <= 0.1 - DELAY_S + 1e-3 for lead in leads), leads
        # exactly: the node's ~/timing for the same step says when the frame arrived (image_latency_ms after its
        # stamp) and when the step began (frame_wait_ms later); the command went out within step_ms of that, so its
        # point is due 0.1 s after the stamp: lead in [0.1 - latency - wait - step, 0.1 - latency - wait], unless
        # that falls below the floor (MIN_LEAD_FRACTION of the period), where it is the floor
        wait_for(lambda: len(timings.snapshot()) >= len(got), 10.0, "a ~/timing message per command")
        floor = MIN_LEAD_FRACTION * 0.1
        for lead, timing in zip(leads, timings.snapshot()):
            f = dict(zip(timing.name, timing.position))
            late = (f["image_latency_ms"] + f["frame_wait_ms"]) * 1e-3
            lo, hi = max(floor, 0.1 - late - f["step_ms"] * 1e-3), max(floor, 0.1 - late)
            assert lo - 1e-4 <= lead <= hi + 1e-4, (lead, lo, hi, f)
        assert sum(lead > floor + 1e-6 for lead in leads) >= len(leads) // 2, leads  # mostly timed, not clamped
    finally:
        client.close()
        node.stop()
