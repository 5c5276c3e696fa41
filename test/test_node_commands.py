"""The node over real DDS, ``trigger: timer``: inputs streamed at 30 Hz, commands, diagnostics, stale input, hold.

One node process (10 Hz model, ``command_interface: forward_position``) serves the module's
tests in order; the test process streams camera frames and joint states from a background thread.
"""

from __future__ import annotations

import array
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, Header

from model_cache import make_test_model  # exported by torch, or copied from the cache where torch is missing
from eipl_trt.ros.outputs import TIMING_FIELDS
from eipl_trt.ros.convert import s_to_stamp
from eipl_trt.spec import ModelSpec
from ros_helpers import NodeProcess, RosClient, new_domain_id, wait_for, write_params

pytestmark = pytest.mark.ros

NODE = "/eipl_trt"
COMMANDS = "/forward_position_controller/commands"
MEASURED = np.array([0.2, -0.3, 0.1, 0.0, 0.4, -0.1])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sarnn")
    make_test_model("sarnn", out, seed=4, joint_dim=6, rate_hz=10.0)
    return out


class Streamer:
    """Publishes 96x128 rgb8 frames and joint states at 30 Hz; either stream can be paused."""

    def __init__(self, client: RosClient):
        self.images = client.publisher(Image, "image_raw")
        self.joints = client.publisher(JointState, "joint_states")
        self.send_images = threading.Event()
        self.send_images.set()
        self.stamps: set[tuple[int, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rng = np.random.default_rng(0)
        names = [f"joint_{i}" for i in range(6)]
        while not self._stop.is_set():
            now = time.time()
            stamp = s_to_stamp(now)
            self.joints.publish(JointState(header=Header(stamp=stamp), name=names[::-1],
                                           position=[float(v) for v in MEASURED[::-1]]))
            if self.send_images.is_set():
                pixels = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
                self.stamps.add((stamp.sec, stamp.nanosec))
                self.images.publish(Image(header=Header(stamp=stamp, frame_id="cam"), height=96, width=128,
                                          encoding="rgb8", step=384, data=array.array("B", pixels.tobytes())))
            time.sleep(1 / 30)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)


@pytest.fixture(scope="module")
def running(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("timer_node")
    domain = new_domain_id()
    params = write_params(tmp / "params.yaml", backend="onnxruntime", command_interface="forward_position",
                          max_input_age=0.3)
    node = NodeProcess(tmp / "node.log", domain, params, ["-p", f"model:={model_dir}"])
    client = RosClient(domain)
    ctx: dict[str, Any] = {"node": node, "client": client}
    try:
        ctx["predictions"] = client.collect(JointState, f"{NODE}/predicted_joint_states")
        ctx["commands"] = client.collect(Float64MultiArray, COMMANDS)
        ctx["diagnostics"] = client.collect(DiagnosticArray, "/diagnostics")
        ctx["timing"] = client.collect(JointState, f"{NODE}/timing")
        ctx["attention"] = client.collect(Image, f"{NODE}/attention_image", depth=5)
        ctx["predicted_image"] = client.collect(Image, f"{NODE}/predicted_image", depth=5)
        for key in ("predictions", "commands", "diagnostics"):
            ctx[key].wait_matched()
        ctx["stream"] = Streamer(client)
        yield ctx
    finally:
        if "stream" in ctx:
            ctx["stream"].close()
        client.close()
        node.stop()


def statuses(msg: DiagnosticArray) -> dict[str, DiagnosticStatus]:
    return {s.name.split(": ", 1)[1]: s for s in msg.status}


def values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_predictions_commands_images_and_timing(running: dict[str, Any], model_dir: Path) -> None:
    spec = ModelSpec.load(model_dir)
    preds = running["predictions"].wait(lambda m: True, 20.0, "a prediction")
    wait_for(lambda: len(running["predictions"].snapshot()) >= 5, 20.0, "5 predictions")
    for msg in running["predictions"].snapshot():
        assert list(msg.name) == list(spec.joint_names)
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) in running["stream"].stamps
        assert msg.header.frame_id == "cam"
    assert preds is not None
    wait_for(lambda: len(running["commands"].snapshot()) >= 5, 20.0, "5 commands")
    lo, hi = np.array(spec.joint_min), np.array(spec.joint_max)
    for cmd in running["commands"].snapshot():
        q = np.asarray(cmd.data)
        assert q.shape == (6,) and np.all(np.isfinite(q))
        assert np.all(q >= lo - 1e-12) and np.all(q <= hi + 1e-12)  # clamped to the model bounds
    first = np.asarray(running["commands"].snapshot()[0].data)
    assert np.all(np.abs(first - MEASURED) <= 0.35 + 1e-9)  # max_step from the measured position
    attention = running["attention"].wait(lambda m: True, 20.0, "an attention image")
    assert (attention.height, attention.width, attention.encoding) == (96, 128, "rgb8")
    predicted = running["predicted_image"].wait(lambda m: True, 20.0, "a predicted image")
    assert (predicted.height, predicted.width, predicted.encoding) == (64, 64, "rgb8")
    running["timing"].wait(lambda m: True, 20.0, "a timing message")
    for timing in running["timing"].snapshot():
        assert list(timing.name) == list(TIMING_FIELDS)  # fixed order: rqt_plot plots position[i]
        f = dict(zip(timing.name, timing.position))
        # every stage was measured (took time), and the step holds them: one clock, one step
        assert min(f["preprocess_ms"], f["inference_ms"], f["postprocess_ms"]) > 0.0, f
        assert f["step_ms"] >= f["preprocess_ms"] + f["inference_ms"] + f["postprocess_ms"], f
        # inputs arrived before the step (and after their stamps), and no older than max_input_age (0.3 s)
        assert 0.0 < f["input_age_ms"] <= 300.0, f
        assert f["image_latency_ms"] > 0.0 and f["frame_wait_ms"] > 0.0, f


def test_diagnostics_report(running: dict[str, Any]) -> None:
    def full_report(msg: DiagnosticArray) -> bool:
        s = statuses(msg)
        return s.keys() == {"inference", "inputs", "commands"} and int(values(s["inputs"])["dropped_images"]) > 0 \
            and int(values(s["inference"])["steps"]) > 0

    report = statuses(running["diagnostics"].wait(full_report, 20.0, "a report with steps and dropped frames"))
    inference, inputs, commands = values(report["inference"]), values(report["inputs"]), values(report["commands"])
    assert inference["backend"] == "onnxruntime" and inference["precision"] == "fp32"
    assert inference["inference_ms"].startswith("p50 ") and "p99" in inference["inference_ms"]
    assert inference["power"].startswith("no power source")
    assert float(inputs["image_rate_hz"]) > 0 and inputs["last_error"] == "none"
    assert report["inputs"].level == DiagnosticStatus.OK, report["inputs"].message
    assert commands["interface"] == "forward_position" and commands["topic"] == "forward_position_controller/commands"
    assert int(commands["commands"]) > 0
    assert report["inference"].hardware_id.startswith("eipl_trt/")


def next_report(running: dict[str, Any], after: DiagnosticArray, timeout: float = 10.0) -> dict[str, DiagnosticStatus]:
    """The first /diagnostics report received after the report ``after`` (they come once a second)."""
    def later() -> DiagnosticArray | None:
        reports = running["diagnostics"].snapshot()
        i = next(i for i, m in enumerate(reports) if m is after)
        return reports[i + 1] if len(reports) > i + 1 else None

    return statuses(wait_for(later, timeout, "the next /diagnostics report"))


def counts(report: dict[str, DiagnosticStatus]) -> tuple[int, int]:
    """The node's own counters: (model steps, commands sent)."""
    return int(values(report["inference"])["steps"]), int(values(report["commands"])["commands"])


def test_stale_input_stops_commands(running: dict[str, Any]) -> None:
    stream, commands, predictions = running["stream"], running["commands"], running["predictions"]
    stream.send_images.clear()  # the camera stops; joint states keep coming

    def stale(msg: DiagnosticArray) -> bool:
        inputs = statuses(msg)["inputs"]
        return inputs.level == DiagnosticStatus.ERROR and "inputs stale" in inputs.message

    n0 = len(running["diagnostics"].snapshot())
    first = wait_for(lambda: next((m for m in running["diagnostics"].snapshot()[n0:] if stale(m)), None), 20.0,
                     "an ERROR for stale inputs")
    # two reports a second apart, both stale: the node neither stepped nor commanded in between (its own counters),
    second = next_report(running, first)
    assert "inputs stale" in second["inputs"].message and counts(second) == counts(statuses(first)), \
        "the model kept stepping or commanding on a stale camera"
    # and what reached us stopped too (everything sent before the first report has arrived a second later)
    n_cmd, n_pred = len(commands.snapshot()), len(predictions.snapshot())
    third = next_report(running, running["diagnostics"].snapshot()[-1])
    assert counts(third) == counts(second)
    assert (len(commands.snapshot()), len(predictions.snapshot())) == (n_cmd, n_pred), "commands continued"
    assert "inputs are" in running["node"].log() and "max_input_age 0.300 s" in running["node"].log()
    stream.send_images.set()
    wait_for(lambda: len(commands.snapshot()) > n_cmd, 20.0, "commands to resume with fresh inputs")


def test_deactivate_sends_hold_at_measured_position(running: dict[str, Any]) -> None:
    client, commands = running["client"], running["commands"]

    def transition(tid: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=tid))
        return client.call(ChangeState, f"{NODE}/change_state", request).success

    assert transition(Transition.TRANSITION_DEACTIVATE)
    commands.wait(lambda m: np.array_equal(np.asarray(m.data), MEASURED), 10.0, "a hold command")
    assert client.call(GetState, f"{NODE}/get_state", GetState.Request()).current_state.label == "inactive"
    held = running["diagnostics"].wait(lambda m: values(statuses(m)["commands"])["holds"] == "1", 10.0,
                                       "holds=1 in diagnostics")
    report = statuses(held)
    assert report["commands"].level in (DiagnosticStatus.OK, DiagnosticStatus.WARN)
    # the next report: no step and no command since the hold (the node's counters), and the hold was the last
    # command that reached us
    later = next_report(running, held)
    assert counts(later) == counts(report), "an inactive node kept stepping or commanding"
    n = len(commands.snapshot())
    assert np.array_equal(np.asarray(commands.snapshot()[-1].data), MEASURED), "a command followed the hold"
    assert transition(Transition.TRANSITION_ACTIVATE)
    wait_for(lambda: len(commands.snapshot()) > n, 20.0, "commands after re-activation")


def test_sigint_exits_cleanly(running: dict[str, Any]) -> None:
    assert running["node"].stop() == 0, running["node"].log()[-3000:]
