"""The node over real DDS, ``trigger: image``: export -> node -> predictions equal the offline Predictor.

One node process (started like the launch file does) serves every test in this module, in
order: parity with the offline :class:`~eipl_trt.predictor.Predictor`, a precision switch that
keeps the LSTM state, ``~/reset``, bad inputs, a ROS time jump, image stamps going backwards,
lifecycle transitions, and a clean SIGINT exit. Inputs go in lockstep (joint states, then the
image, then wait for its prediction), so each image is exactly one model step.
"""

from __future__ import annotations

import array
import math
import re
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PolygonStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.parameter import parameter_value_to_python
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from model_cache import make_test_model  # exported by torch, or copied from the cache where torch is missing
from eipl_trt.predictor import Predictor
from eipl_trt.runners.onnxrt import OrtRunner
from eipl_trt.spec import ModelSpec
from eipl_trt.ros.convert import s_to_stamp
from ros_helpers import NodeBarrier, NodeProcess, RosClient, new_domain_id, wait_for, write_params

pytestmark = pytest.mark.ros

ROBOT_JOINTS = [f"arm_{i}" for i in range(6)]
NODE = "/eipl_trt"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64 px SARNN with 6 joints and real ``fp16`` (all FP16 but the I/O) and ``int8`` (every
    Conv/ConvTranspose, symmetric Q/DQ) variants, made by :mod:`eipl_trt.precision`."""
    import onnx

    from eipl_trt.precision import quantize_int8, record_calibration_feeds
    from eipl_trt.precision.fp16 import convert_fp16
    from eipl_trt.precision.register import NewVariant, commit_variants

    out = tmp_path_factory.mktemp("sarnn")
    spec = make_test_model("sarnn", out, seed=3, joint_dim=6, rate_hz=10.0)
    half = convert_fp16(onnx.load(str(out / "model.onnx")))
    spec = commit_variants(spec, [NewVariant("fp16", half.SerializeToString(), 17, "8.6")])
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(8)]
    feeds = record_calibration_feeds(spec, [(frames, rng.uniform(-0.8, 0.8, (8, 6)), "rgb8")])
    quantize_int8(spec, feeds)
    return out


class Lockstep:
    """Publishes /clock, partial joint_states (shuffled, plus an extra joint) and an image; waits for the prediction."""

    def __init__(self, client: RosClient):
        self.client = client
        self.images = client.publisher(Image, "image_raw")
        self.joints = client.publisher(JointState, "joint_states")
        self.clock = client.publisher(Clock, "/clock")
        self.predictions = client.collect(JointState, f"{NODE}/predicted_joint_states")
        self.enc_points = client.collect(PolygonStamped, f"{NODE}/enc_points")
        self.diagnostics = client.collect(DiagnosticArray, "/diagnostics")
        self.barrier = NodeBarrier(client, NODE)
        self.sim_time = 100.0
        self.stamp = 1000.0
        wait_for(lambda: self.images.get_subscription_count() > 0 and self.joints.get_subscription_count() > 0,
                 20.0, "the node to subscribe to image_raw and joint_states")
        for collector in (self.predictions, self.enc_points, self.diagnostics):
            collector.wait_matched()

    def tick_clock(self, t: float | None = None) -> None:
        self.sim_time = self.sim_time + 0.1 if t is None else t
        self.clock.publish(Clock(clock=s_to_stamp(self.sim_time)))

    def send_joints(self, q: np.ndarray) -> None:
        first = [3, 0, 5]
        for part, extra in ((first, True), ([i for i in range(6) if i not in first], False)):
            names = [ROBOT_JOINTS[i] for i in part] + (["gripper"] if extra else [])
            values = [float(q[i]) for i in part] + ([0.5] if extra else [])
            self.joints.publish(JointState(name=names, position=values))
        self.barrier()  # the node ran its joint_states callback for both parts before the image goes out

    def image_msg(self, image: np.ndarray, encoding: str, pad: int = 0) -> Image:
        h, w = image.shape[:2]
        row = image.reshape(h, -1)
        padded = np.concatenate([row, np.full((h, pad), 7, np.uint8)], axis=1) if pad else row
        header = Header(stamp=s_to_stamp(self.stamp), frame_id="camera")
        return Image(header=header, height=h, width=w, encoding=encoding, step=padded.shape[1],
                     data=array.array("B", padded.tobytes()))

    def step(self, image: np.ndarray, q: np.ndarray, encoding: str = "rgb8", pad: int = 0,
             stamp: float | None = None) -> JointState:
        """One lockstep model step; returns the prediction computed from this image."""
        self.tick_clock()
        self.send_joints(q)  # joint states first, handled by the node: the image steps
        self.stamp = self.stamp + 0.1 if stamp is None else stamp
        msg = self.image_msg(image, encoding, pad)
        self.images.publish(msg)
        want = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        return self.predictions.wait(lambda m: (m.header.stamp.sec, m.header.stamp.nanosec) == want, 15.0,
                                     f"the prediction for the image stamped {self.stamp:.1f}")

    def diagnostics_after(self, t0: float, timeout: float = 10.0) -> dict[str, Any]:
        """The first /diagnostics report received after ``t0`` (monotonic), as ``name -> status``."""
        n0 = len(self.diagnostics.snapshot())
        msg = wait_for(lambda: self.diagnostics.snapshot()[n0:][-1:] or None, timeout, "a new /diagnostics report")[0]
        return {s.name.split(": ", 1)[1]: s for s in msg.status}


def values(status: Any) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def inputs(seed: int, n: int, size: tuple[int, int] = (64, 64)) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 256, (*size, 3), dtype=np.uint8), rng.uniform(-0.8, 0.8, 6)) for _ in range(n)]


def assert_same(msg: JointState, expected: Any) -> None:
    assert list(msg.name) == ROBOT_JOINTS
    np.testing.assert_allclose(np.asarray(msg.position), expected.joints, rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def replay(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[NodeProcess, RosClient, Lockstep]]:
    tmp = tmp_path_factory.mktemp("replay_node")
    domain = new_domain_id()
    params = write_params(tmp / "params.yaml", trigger="image", backend="onnxruntime", joint_names=ROBOT_JOINTS,
                          max_input_age=5.0)
    node = NodeProcess(tmp / "node.log", domain, params, ["-p", f"model:={model_dir}", "-p", "use_sim_time:=true"])
    client = RosClient(domain)
    try:
        lockstep = Lockstep(client)
        yield node, client, lockstep
    finally:
        client.close()
        node.stop()


def cpu_graph_rewrites(model_dir: Path, precision: str) -> int:
    """How many layers ONNX Runtime's runner rewrites for the CPU when it opens this variant (the node's count)."""
    with OrtRunner(ModelSpec.load(model_dir), precision) as runner:
        return len(runner.rewrites)


def set_precision(client: RosClient, value: str) -> Any:
    request = SetParameters.Request(parameters=[ParameterMsg(
        name="precision", value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value))])
    return client.call(SetParameters, f"{NODE}/set_parameters", request).results[0]


def get_parameter(client: RosClient, name: str) -> Any:
    values = client.call(GetParameters, f"{NODE}/get_parameters", GetParameters.Request(names=[name])).values
    return parameter_value_to_python(values[0])


def reset(client: RosClient) -> None:
    response = client.call(Trigger, f"{NODE}/reset", Trigger.Request())
    assert response.success, response.message


def test_predictions_equal_offline_predictor(replay: Any, model_dir: Path) -> None:
    node, client, step = replay
    offline = Predictor.from_model(model_dir, backend="onnxruntime")
    reset(client)
    for image, q in inputs(0, 6):
        msg = step.step(image, q)
        expected = offline.step(image, q, "rgb8", want_image=False)
        assert_same(msg, expected)
        assert msg.header.frame_id == "camera"
        points = step.enc_points.wait(lambda m: m.header.stamp == msg.header.stamp, 5.0, "enc_points")
        got = np.array([[p.x, p.y] for p in points.polygon.points])
        np.testing.assert_allclose(got, expected.enc_points_px, atol=1e-4)
    # Any frame size, bgr8 and row padding: the node resizes and strips padding like the Predictor.
    image = np.random.default_rng(5).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    q = np.linspace(-0.5, 0.5, 6)
    msg = step.step(image, q, encoding="bgr8", pad=5)
    assert_same(msg, offline.step(image, q, "bgr8", want_image=False))


def test_precision_switch_keeps_lstm_state(replay: Any, model_dir: Path) -> None:
    """fp32 -> fp16 -> int8 while running: each variant continues from the state the previous one left."""
    node, client, step = replay
    offline = Predictor.from_model(model_dir, backend="onnxruntime")
    reset(client)
    data = inputs(1, 9)
    for image, q in data[:3]:
        assert_same(step.step(image, q), offline.step(image, q, want_image=False))
    for precision, chunk in (("fp16", data[3:6]), ("int8", data[6:])):
        result = set_precision(client, precision)
        assert result.successful, result.reason
        wait_for(lambda: f"precision switched to {precision}" in node.log(), 20.0, f"the {precision} runner to take over")
        switched = Predictor.from_model(model_dir, backend="onnxruntime", precision=precision)
        switched.set_state(offline.get_state())
        fresh = Predictor.from_model(model_dir, backend="onnxruntime", precision=precision)
        for i, (image, q) in enumerate(chunk):
            expected = switched.step(image, q, want_image=False)
            assert_same(step.step(image, q), expected)
            if i == 0:  # a switch that dropped the LSTM state would have predicted this instead
                assert np.abs(fresh.step(image, q, want_image=False).joints - expected.joints).max() > 1e-6
        offline = switched
    report = step.diagnostics_after(time.monotonic())
    assert values(report["inference"])["precision"] == "int8"
    # nobody subscribes to ~/predicted_image here: the steps above ran the graph without the decoder
    assert values(report["inference"])["image_decoder"] == "run only while the predicted image is wanted"
    # the int8 runner rewrote its graph for the CPU as an offline one does (fp32's count: the next test)
    assert values(report["inference"])["cpu_graph_rewrites"] == str(cpu_graph_rewrites(model_dir, "int8"))
    # thread_priority (default 50): SCHED_FIFO where the user may, else normal with the reason
    assert re.fullmatch(r"SCHED_FIFO 50|normal: SCHED_FIFO 50 refused .*", values(report["inference"])["step_thread"])


def test_failed_precision_switch_keeps_the_old_runner(replay: Any, model_dir: Path) -> None:
    """A variant that exists but is corrupt is accepted, fails to load in the background, and is reverted."""
    node, client, step = replay
    (model_dir / "model.fp16.onnx").write_bytes(b"not an onnx model")
    try:
        result = set_precision(client, "fp16")
        assert result.successful, result.reason
        wait_for(lambda: "precision switch to fp16 failed, staying on int8" in node.log(), 20.0, "the switch to fail")
        wait_for(lambda: get_parameter(client, "precision") == "int8", 10.0, "precision to be reverted to int8")
    finally:
        (model_dir / "model.fp16.onnx").unlink()
    reset(client)
    image, q = inputs(8, 1)[0]
    fresh = Predictor.from_model(model_dir, backend="onnxruntime", precision="int8")  # still on int8
    assert_same(step.step(image, q), fresh.step(image, q, want_image=False))
    last_error = values(step.diagnostics_after(time.monotonic())["inputs"])["last_error"]
    assert "precision switch to fp16 failed" in last_error and "does not match the sha256" in last_error
    result = set_precision(client, "fp32")  # the tests that follow compare with the fp32 predictor
    assert result.successful, result.reason
    wait_for(lambda: "precision switched to fp32" in node.log(), 20.0, "the fp32 runner to take over")
    step.step(image, q)  # a step on the fp32 runner, then its report: the CPU graph rewrites it made
    rewrites = values(step.diagnostics_after(time.monotonic())["inference"])["cpu_graph_rewrites"]
    assert cpu_graph_rewrites(model_dir, "fp32") > 0 and rewrites == str(cpu_graph_rewrites(model_dir, "fp32"))


def test_reset_service_restarts_the_sequence(replay: Any, model_dir: Path) -> None:
    node, client, step = replay
    data = inputs(2, 3)
    for image, q in data:  # advance the state
        step.step(image, q)
    reset(client)
    fresh = Predictor.from_model(model_dir, backend="onnxruntime")
    for image, q in data:
        assert_same(step.step(image, q), fresh.step(image, q, want_image=False))


BAD_IMAGES = [
    ("unsupported encoding", dict(encoding="16UC1"), "unsupported image encoding '16UC1'"),
    ("step smaller than a row", dict(step=10), "image step 10 is smaller than width*channels"),
    ("truncated data", dict(data_len=100), "the message is truncated or step/padding is wrong"),
    ("empty image", dict(height=0, width=0, step=0, data_len=0), "image is empty"),
]
BAD_JOINTS = [
    ("NaN position", JointState(name=["arm_1"], position=[math.nan]), "NaN/Inf position for arm_1"),
    # two joints: the node throttles a repeated warning, and "arm_1" and "arm_3" differ only in digits
    ("Inf positions", JointState(name=["arm_2", "arm_3"], position=[math.inf, -math.inf]),
     "NaN/Inf position for arm_2, arm_3"),
    ("duplicate names", JointState(name=["arm_0", "arm_4", "arm_0"], position=[0.1, 0.2, 0.3]),
     "joint_states message names arm_0 more than once; ignored"),
    ("empty message", JointState(), "joint_states message is empty"),
    ("unknown names only", JointState(name=["wheel_l", "wheel_r"], position=[0.0, 0.0]), "none of the model joints"),
    ("names/positions mismatch", JointState(name=["arm_0", "arm_1"], position=[0.1]), "2 names but 1 positions"),
]


def test_bad_inputs_are_reported_and_survived(replay: Any, model_dir: Path) -> None:
    node, client, step = replay
    good = step.image_msg(np.zeros((8, 8, 3), np.uint8), "rgb8")
    for what, change, text in BAD_IMAGES:
        msg = Image(header=good.header, height=change.get("height", 8), width=change.get("width", 8),
                    encoding=change.get("encoding", "rgb8"), step=change.get("step", 24),
                    data=array.array("B", bytes(change.get("data_len", 192))))
        step.images.publish(msg)
        wait_for(lambda: text in node.log(), 10.0, f"the node to report the bad image ({what})")
    for what, msg, text in BAD_JOINTS:
        step.joints.publish(msg)
        wait_for(lambda: text in node.log(), 10.0, f"the node to report the bad joint_states ({what})")
    report = step.diagnostics_after(time.monotonic())
    counts = values(report["inputs"])
    assert int(counts["bad_image"]) >= len(BAD_IMAGES) and int(counts["bad_joint_states"]) >= len(BAD_JOINTS)
    assert counts["last_error"] != "none"
    assert node.alive()
    reset(client)  # the node still answers services and steps
    image, q = inputs(3, 1)[0]
    fresh = Predictor.from_model(model_dir, backend="onnxruntime")
    assert_same(step.step(image, q), fresh.step(image, q, want_image=False))


def test_time_jump_backwards_resets_state(replay: Any, model_dir: Path) -> None:
    node, client, step = replay
    data = inputs(4, 3)
    for image, q in data:
        step.step(image, q)
    step.tick_clock(50.0)  # a looping `ros2 bag play --clock` restarts its clock
    wait_for(lambda: "ROS time jumped back" in node.log(), 10.0, "the node to notice the time jump")
    fresh = Predictor.from_model(model_dir, backend="onnxruntime")
    for image, q in data:
        assert_same(step.step(image, q), fresh.step(image, q, want_image=False))


def test_image_stamps_going_backwards_reset_state(replay: Any, model_dir: Path) -> None:
    node, client, step = replay
    data = inputs(6, 3)
    for image, q in data:
        step.step(image, q)
    fresh = Predictor.from_model(model_dir, backend="onnxruntime")
    first = step.stamp - 10.0
    for i, (image, q) in enumerate(data):
        msg = step.step(image, q, stamp=first + 0.1 * i)
        assert_same(msg, fresh.step(image, q, want_image=False))
    assert "image stamps went backwards" in node.log()


def test_lifecycle_deactivate_and_activate(replay: Any, model_dir: Path) -> None:
    node, client, step = replay

    def transition(tid: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=tid))
        return client.call(ChangeState, f"{NODE}/change_state", request).success

    def state() -> str:
        return client.call(GetState, f"{NODE}/get_state", GetState.Request()).current_state.label

    assert state() == "active"
    assert transition(Transition.TRANSITION_DEACTIVATE) and state() == "inactive"
    wait_for(lambda: step.images.get_subscription_count() == 0, 10.0, "the node to unsubscribe")
    assert transition(Transition.TRANSITION_ACTIVATE) and state() == "active"
    wait_for(lambda: step.images.get_subscription_count() > 0, 10.0, "the node to subscribe again")
    image, q = inputs(7, 1)[0]
    fresh = Predictor.from_model(model_dir, backend="onnxruntime")  # activation starts a new sequence
    assert_same(step.step(image, q), fresh.step(image, q, want_image=False))


def test_sigint_exits_cleanly(replay: Any) -> None:
    node, client, step = replay
    assert node.stop() == 0, node.log()[-3000:]
