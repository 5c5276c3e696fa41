"""The node with ``image_transport: compressed`` over real DDS: JPEG/PNG frames in, predictions out.

One node process subscribes to ``sensor_msgs/CompressedImage`` on ``image_raw/compressed``
(remapped here to ``/camera/image_raw/compressed``, as on a robot). Inputs go in lockstep (joint
states, then the frame, then wait for its prediction), so every frame is one model step and the
predictions must equal the offline Predictor fed ``cv2.imdecode``'s pixels. Truncated and corrupt
frames are counted as bad input and survived; ``~/timing`` and ``/diagnostics`` carry the decode time.
"""

from __future__ import annotations

import array
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import CompressedImage, JointState  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from model_cache import make_test_model  # noqa: E402 - exported by torch, or from the cache without torch
from eipl_trt.predictor import Predictor  # noqa: E402
from eipl_trt.ros.convert import s_to_stamp  # noqa: E402
from ros_helpers import NodeBarrier, NodeProcess, RosClient, new_domain_id, wait_for, write_params  # noqa: E402

pytestmark = pytest.mark.ros

JOINTS = [f"arm_{i}" for i in range(6)]
NODE = "/eipl_trt"
TOPIC = "/camera/image_raw/compressed"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sarnn_compressed")
    make_test_model("sarnn", out, seed=5, joint_dim=6, rate_hz=10.0)
    return out


class CompressedLockstep:
    def __init__(self, client: RosClient):
        self.frames = client.publisher(CompressedImage, TOPIC)
        self.joints = client.publisher(JointState, "joint_states")
        self.predictions = client.collect(JointState, f"{NODE}/predicted_joint_states")
        self.timing = client.collect(JointState, f"{NODE}/timing")
        self.diagnostics = client.collect(DiagnosticArray, "/diagnostics")
        self.stamp = 2000.0
        wait_for(lambda: self.frames.get_subscription_count() > 0 and self.joints.get_subscription_count() > 0,
                 20.0, f"the node to subscribe to {TOPIC} and joint_states")
        for collector in (self.predictions, self.timing, self.diagnostics):
            collector.wait_matched()
        self.barrier = NodeBarrier(client, NODE)
        self._warm_up(client)

    def _warm_up(self, client: RosClient) -> None:
        """Until one frame has made a prediction, send joint states and a frame (both best effort on the node's
        side: its readers may not have matched these publishers yet and drop the first ones), then reset the
        LSTM state for the tests."""
        data = array.array("B", cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
        self.stamp = 1000.0  # warm-up frames: stamps below the tests' (2000 s on)
        for _ in range(20):
            self.joints.publish(JointState(name=JOINTS, position=[0.0] * 6))
            self.barrier()
            self.frames.publish(CompressedImage(header=self.header(), format="png", data=data))
            try:
                wait_for(self.predictions.snapshot, 2.0, "a warm-up prediction")
                break
            except AssertionError:
                continue  # the frame (or the joints) went out before the node's reader matched: send again
        else:
            raise AssertionError("no prediction for 20 warm-up frames; see the node log")
        response = client.call(Trigger, f"{NODE}/reset", Trigger.Request())
        assert response.success, response.message
        self.predictions.clear()
        self.stamp = 2000.0

    def header(self) -> Header:
        self.stamp += 0.1
        return Header(stamp=s_to_stamp(self.stamp), frame_id="camera")

    def step(self, fmt: str, data: bytes, q: np.ndarray) -> JointState:
        self.joints.publish(JointState(name=JOINTS, position=[float(v) for v in q]))
        self.barrier()  # joint states first, handled by the node, then the frame that steps
        msg = CompressedImage(header=self.header(), format=fmt, data=array.array("B", data))
        self.frames.publish(msg)
        want = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        return self.predictions.wait(lambda m: (m.header.stamp.sec, m.header.stamp.nanosec) == want, 15.0,
                                     f"the prediction for the frame stamped {self.stamp:.1f}")


@pytest.fixture(scope="module")
def compressed_node(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    tmp = tmp_path_factory.mktemp("compressed_node")
    domain = new_domain_id()
    params = write_params(tmp / "params.yaml", trigger="image", backend="onnxruntime", joint_names=JOINTS,
                          max_input_age=5.0, image_transport="compressed")
    node = NodeProcess(tmp / "node.log", domain, params,
                       ["-p", f"model:={model_dir}", "-r", f"image_raw/compressed:={TOPIC}"])
    client = RosClient(domain)
    try:
        yield node, CompressedLockstep(client)
    finally:
        client.close()
        node.stop()


def _scene(seed: int) -> np.ndarray:
    """A smooth 48x64 BGR picture with a random bright blob (so JPEG keeps it recognisable)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:48, 0:64]
    cy, cx = rng.uniform(8, 40), rng.uniform(8, 56)
    blob = 200 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 60.0)
    return np.clip(np.stack([x * 2 + blob, y * 3 + blob * 0.5, 90 + blob * 0.2], -1), 0, 255).astype(np.uint8)


def test_predictions_from_jpeg_and_png_equal_the_offline_predictor(compressed_node: Any, model_dir: Path) -> None:
    node, lockstep = compressed_node
    offline = Predictor.from_model(model_dir, backend="onnxruntime")
    rng = np.random.default_rng(7)
    for i, (fmt, ext) in enumerate([("rgb8; jpeg compressed bgr8", ".jpg"), ("jpeg", ".jpg"),
                                    ("bgr8; png compressed bgr8", ".png"), ("rgb8; jpeg compressed bgr8", ".jpg")]):
        bgr = _scene(i)
        data = cv2.imencode(ext, bgr)[1].tobytes()
        q = rng.uniform(-0.8, 0.8, 6)
        got = lockstep.step(fmt, data, q)
        expected = offline.step(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), q, "bgr8",
                                want_image=False)
        assert list(got.name) == JOINTS
        np.testing.assert_allclose(np.asarray(got.position), expected.joints, rtol=0, atol=1e-9)
    timing = lockstep.timing.snapshot()[-1]
    decode_ms = dict(zip(timing.name, timing.position))["decode_ms"]
    assert 0.0 < decode_ms < 1000.0
    assert node.alive()


def test_truncated_and_corrupt_frames_are_counted_and_survived(compressed_node: Any) -> None:
    node, lockstep = compressed_node
    good = cv2.imencode(".jpg", _scene(9))[1].tobytes()
    bad = [("truncated", good[: len(good) // 2], "no end-of-image marker"),
           ("garbage", b"\x13" * 500, "neither JPEG nor PNG"),
           ("empty", b"", "has no data")]
    for what, data, text in bad:
        lockstep.frames.publish(CompressedImage(header=lockstep.header(), format="rgb8; jpeg compressed bgr8",
                                                data=array.array("B", data)))
        wait_for(lambda: text in node.log(), 10.0, f"the node to report the {what} frame")
    t0 = len(lockstep.diagnostics.snapshot())
    report = wait_for(lambda: lockstep.diagnostics.snapshot()[t0:][-1:] or None, 10.0, "a /diagnostics report")[0]
    status = {s.name.split(": ", 1)[1]: {kv.key: kv.value for kv in s.values} for s in report.status}
    assert int(status["inputs"]["bad_image"]) >= len(bad)
    assert "p50" in status["inference"]["decode_ms"], status["inference"]  # its own stage beside preprocess etc.
    assert node.alive()
    q = np.linspace(-0.3, 0.3, 6)
    got = lockstep.step("jpeg", good, q)  # still predicting (its LSTM state continues from the first test)
    assert np.all(np.isfinite(np.asarray(got.position)))


def test_without_opencv_configure_fails_and_says_what_to_install(model_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without OpenCV: ``cv2`` is made unimportable for the node process only."""
    blocker = tmp_path / "no_opencv" / "cv2"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("No module named \'cv2\' (hidden by the test)")\n')
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "no_opencv"))
    params = write_params(tmp_path / "params.yaml", backend="onnxruntime", joint_names=JOINTS,
                          image_transport="compressed")
    node = NodeProcess(tmp_path / "node.log", new_domain_id(), params, ["-p", f"model:={model_dir}"])
    try:
        wait_for(lambda: "configure failed" in node.log(), 60.0, "the node to refuse to configure")
        assert "needs OpenCV" in node.log() and "pip install eipl_trt[camera]" in node.log()
        assert node.alive()  # unconfigured, still answering lifecycle services
    finally:
        node.stop()
