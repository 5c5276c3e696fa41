"""The demo path: the node process over real DDS, fed a real MCAP bag, equals the offline Predictor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("rosbags")
models_testing = pytest.importorskip("eipl_trt.models.testing")

from eipl_trt.bagio import read_bag, select_joints  # noqa: E402
from eipl_trt.demo import run_demo  # noqa: E402
from eipl_trt.predictor import Predictor  # noqa: E402
from eipl_trt.sim.bagwrite import BagEpisode, write_episodes_bag  # noqa: E402
from ros_helpers import new_domain_id  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]
NAMES = ("a", "b", "c")


@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_demo_replays_a_bag_through_the_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str) -> None:
    if transport == "compressed":
        pytest.importorskip("cv2")
    monkeypatch.setenv("ROS_DOMAIN_ID", str(new_domain_id()))
    spec = models_testing.make_test_model("sarnn", tmp_path / "model", seed=0, joint_dim=3, joint_names=NAMES)
    rng = np.random.default_rng(0)
    episodes = []
    for e in range(2):
        # joint states 50 ms ahead of each frame, so the node has the frame's joints before the frame
        # whatever order DDS delivers the two topics in
        t_img = np.arange(15) / 10.0 + 0.05
        t_joint = np.arange(15) / 10.0
        q = np.stack([0.5 * np.sin(t_joint + e), 0.3 * np.cos(t_joint), t_joint / 3, -t_joint], 1)
        episodes.append(BagEpisode(t_img, rng.integers(0, 256, (15, 48, 64, 3), dtype=np.uint8), t_joint, q))
    write_episodes_bag(tmp_path / "bag", episodes, joint_names=["c", "extra", "a", "b"])

    summary = run_demo(str(spec.directory), tmp_path / "bag", tmp_path / "out", speed=1.5, gap_s=0.2, progress=False,
                       image_transport=transport)

    assert summary["image_transport"] == transport  # compressed: PNG frames, the node on image_transport: compressed

    assert summary["frames_published"] == 30
    # Camera topics are best effort (sensor-data QoS), so a loaded machine may lose a frame in transit;
    # the node must still answer (nearly) every frame it gets, one prediction each.
    received = summary["predictions_received"]
    assert received >= 24
    assert summary["node_exit_code"] == 0
    # the last frame of each episode has no recorded next step
    assert received - 2 - (30 - received) <= summary["scored_steps"] <= received - (0 if received < 30 else 2)
    assert summary["step_ms_p50"] > 0
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["predictions_received"] == received
    assert (tmp_path / "out" / "demo.png").read_bytes().startswith(b"\x89PNG")

    # The node's predictions over DDS equal the offline Predictor on the same frames and joints (compressed: the
    # PNG frames decode to the bag's pixels). A frame lost in transit never reached the node's LSTM, so the
    # offline replay skips it too.
    rows = (tmp_path / "out" / "predictions.csv").read_text().splitlines()[1:]
    node = {int(r.split(",")[0]): np.array([float(v) for v in r.split(",")[1:]]) for r in rows}
    streams = read_bag(tmp_path / "bag")
    joints = select_joints(streams.joint_names, streams.joint_positions, NAMES)
    predictor = Predictor.from_model(spec)
    for e in range(2):
        predictor.reset_state()
        for k in range(15 * e, 15 * e + 15):
            stamp = streams.image_stamps[k]
            got = node.get(int(round(stamp * 1e9)))
            if got is None:
                continue
            q = joints[np.searchsorted(streams.joint_stamps, stamp) - 1]  # the latest before the frame
            expected = predictor.step(streams.images[k], q, "rgb8").joints
            np.testing.assert_allclose(got, expected, atol=1e-5)
    # EIPL's joint MSE: each prediction against the joints recorded at the next frame (interpolated within the
    # episode), and hold-last (the joints at this frame) against the same; the summary's numbers are these
    errors, holds = [], []
    for e in range(2):
        frames = streams.image_stamps[15 * e: 15 * e + 15]
        mine = (streams.joint_stamps > frames[0] - 1.0) & (streams.joint_stamps < frames[-1] + 1.0)
        t, q = streams.joint_stamps[mine], joints[mine]

        def at(s: float) -> np.ndarray:
            return np.array([np.interp(s, t, q[:, j]) for j in range(q.shape[1])])

        for now, nxt in zip(frames[:-1], frames[1:]):
            if int(round(now * 1e9)) in node:
                errors.append(np.mean((node[int(round(now * 1e9))] - at(nxt)) ** 2))
                holds.append(np.mean((at(now) - at(nxt)) ** 2))
    assert summary["scored_steps"] == len(errors)
    assert summary["joint_mse"] == pytest.approx(float(np.mean(errors)), rel=1e-9) and summary["joint_mse"] > 0
    assert summary["hold_last_mse"] == pytest.approx(float(np.mean(holds)), rel=1e-9)
