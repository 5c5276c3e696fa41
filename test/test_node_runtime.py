"""The node's step logic and diagnostics without DDS: NodeRuntime on a real exported model.

Covers what is awkward to provoke over DDS: each step outcome, dropped frames, runtime parameter
changes, the diagnostic levels (no model, fallback backend, waiting, stale, bad input, missed
deadline) and power/energy per frame from a real INA3221 reader on a sysfs-like tree.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticStatus

from eipl_trt.errors import InputError
from model_cache import make_test_model  # exported by torch, or copied from the cache where torch is missing
from eipl_trt.power.ina3221 import Ina3221Monitor
from eipl_trt.predictor import Predictor
from eipl_trt.ros.diagnostics import DiagnosticsReporter
from eipl_trt.ros.inputs import Frame
from eipl_trt.ros.params import NodeConfig
from eipl_trt.ros.power_source import PowerReading, PowerSource
from eipl_trt.ros.reconfigure import validate_change
from eipl_trt.ros.runtime import NodeRuntime

NAMES = [f"joint_{i}" for i in range(4)]
NO_POWER = PowerReading(None, "no power source: test")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sarnn")
    make_test_model("sarnn", out, seed=5, joint_dim=4, rate_hz=10.0)
    return out


def runtime(model_dir: Path, **values: object) -> NodeRuntime:
    return NodeRuntime.open(NodeConfig.from_values({"model": str(model_dir), "backend": "onnxruntime", **values}))


def frame(t: float, seed: int = 0, stamp: float | None = None) -> Frame:
    image = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return Frame(image, "rgb8", stamp_s=t if stamp is None else stamp, receipt_s=t)


def report(reporter: DiagnosticsReporter, rt: NodeRuntime | None, now: float, state: str = "active",
           power: PowerReading = NO_POWER, fallback: str = "", error: str = "") -> dict[str, DiagnosticStatus]:
    msg = reporter.build(TimeMsg(), now, state, rt.cfg if rt else NodeConfig(), rt, error, None, fallback, power)
    return {s.name.split(": ", 1)[1]: s for s in msg.status}


def values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_step_outcomes_in_order(model_dir: Path) -> None:
    rt = runtime(model_dir, max_input_age=0.5)
    assert rt.step(10.0, want_image=False).status == "no_image"
    rt.on_image(frame(10.0))
    result = rt.step(10.0, want_image=False)
    assert result.status == "missing_joints" and "joint_0, joint_1, joint_2, joint_3" in result.message
    rt.on_joints(NAMES[::-1], [0.1, 0.2, 0.3, 0.4], 10.0)
    result = rt.step(10.05, want_image=True)
    assert result.status == "ok" and result.prediction is not None and result.prediction.image is not None
    np.testing.assert_array_equal(result.measured, [0.4, 0.3, 0.2, 0.1])
    assert result.decision is None  # command_interface none
    offline = Predictor.from_model(model_dir, backend="onnxruntime")
    np.testing.assert_allclose(result.prediction.joints, offline.step(frame(10.0).image, [0.4, 0.3, 0.2, 0.1]).joints)
    # No new frame: the timer step reuses the latest; the image trigger skips.
    assert rt.step(10.1, want_image=False).status == "ok"
    assert rt.step(10.1, want_image=False, new_image_only=True).status == "no_new_image"
    stale = rt.step(11.0, want_image=False)
    assert stale.status == "stale" and "inputs are 1.000 s old" in stale.message
    assert rt.counters.stale_skips == 1 and rt.counters.steps == 2


def test_dropped_frames_and_stamp_reset(model_dir: Path) -> None:
    rt = runtime(model_dir)
    rt.on_joints(NAMES, [0.0] * 4, 1.0)
    assert rt.on_image(frame(1.0)) is False
    assert rt.on_image(frame(1.03)) is True  # the first was never used
    assert rt.step(1.05, want_image=False).status == "ok"
    assert rt.images.dropped == 1
    rt.on_image(frame(1.1, stamp=0.5))  # stamps went backwards: reset at the next step
    rt.step(1.1, want_image=False)
    assert rt.counters.state_resets == 1 and rt.predictor.get_state().step == 1


def deferred(t: float, calls: list[float], seed: int = 0, error: str = "") -> Frame:
    """A frame whose decode is deferred (like JPEG): counts its decoder calls, or fails like a corrupt one."""
    def decode() -> Frame:
        calls.append(t)
        if error:
            raise InputError(error)
        return frame(t, seed)
    return Frame(np.zeros((0, 0, 3), np.uint8), "", stamp_s=t, receipt_s=t, decoder=decode)


def test_deferred_frames_are_decoded_once_and_only_when_used(model_dir: Path) -> None:
    rt = runtime(model_dir, max_input_age=0.5)
    rt.on_joints(NAMES, [0.0] * 4, 1.0)
    calls: list[float] = []
    for i in range(5):  # a camera faster than the model: four are superseded before any step
        rt.on_image(deferred(1.0 + 0.01 * i, calls, seed=i))
    result = rt.step(1.05, want_image=False)
    assert result.status == "ok" and calls == [1.04]
    assert result.frame is not None and result.frame.decoder is None and result.frame.image.shape == (64, 64, 3)
    offline = Predictor.from_model(model_dir, backend="onnxruntime")  # the model saw the newest frame
    assert result.prediction is not None
    np.testing.assert_allclose(result.prediction.joints, offline.step(frame(1.04, seed=4).image, [0.0] * 4).joints)
    assert rt.step(1.1, want_image=False).status == "ok"  # the timer reuses the decoded frame: no new decode
    assert calls == [1.04] and rt.images.dropped == 4
    assert "decode" in rt.stages.summaries()


def test_a_frame_that_fails_to_decode_is_dropped_and_the_previous_one_kept(model_dir: Path) -> None:
    rt = runtime(model_dir, max_input_age=0.5)
    rt.on_joints(NAMES, [0.0] * 4, 1.0)
    calls: list[float] = []
    rt.on_image(deferred(1.0, calls))
    assert rt.step(1.0, want_image=False).status == "ok"
    rt.on_image(deferred(1.1, calls, error="JPEG data is truncated"))
    bad = rt.step(1.1, want_image=False)
    assert bad.status == "bad_image" and "dropped an image: JPEG data is truncated" in bad.message
    assert rt.counters.bad_inputs == {"image": 1}
    again = rt.step(1.2, want_image=False)  # timer mode goes on with the last good frame, not the bad one
    assert again.status == "ok" and again.frame is not None and again.frame.receipt_s == 1.0
    assert calls == [1.0, 1.1]


def test_commands_are_filtered_and_limits_change_at_runtime(model_dir: Path) -> None:
    cfg = {"command_interface": "joint_state", "max_step": 0.01}
    rt = runtime(model_dir, **cfg)
    rt.on_joints(NAMES, [0.0] * 4, 1.0)
    rt.on_image(frame(1.0))
    decision = rt.step(1.0, want_image=False).decision
    assert decision is not None and decision.sent
    assert np.all(np.abs(decision.command) <= 0.01 + 1e-12)
    new_cfg = validate_change(rt.cfg, {"max_step": 0.0, "joint_upper_limits": [0.0] * 4, "trigger": "image"}, rt)
    assert new_cfg.trigger == "timer"  # read-only names are not applied at runtime
    rt.set_config(new_cfg)
    rt.on_image(frame(1.1))
    decision = rt.step(1.1, want_image=False).decision
    assert decision is not None and np.all(decision.command <= 0.0)
    with pytest.raises(InputError, match="one entry per joint"):
        validate_change(rt.cfg, {"joint_lower_limits": [0.0]}, rt)
    with pytest.raises(InputError, match="precision fp16 is not available"):
        validate_change(rt.cfg, {"precision": "fp16"}, rt)
    assert rt.hold_command() is not None and rt.safety.counters.holds == 1


def test_joint_names_must_match_the_model(model_dir: Path) -> None:
    with pytest.raises(InputError, match="joint_names lists 2 joints but model 'sarnn' has 4"):
        runtime(model_dir, joint_names=["a", "b"])


def test_diagnostic_levels(model_dir: Path) -> None:
    reporter = DiagnosticsReporter("eipl_trt")
    none = report(reporter, None, 0.0, state="unconfigured", error="model 'x' is neither an existing path")
    assert none["inference"].level == DiagnosticStatus.ERROR
    assert "no model loaded: model 'x'" in none["inference"].message

    rt = runtime(model_dir, max_input_age=0.5)
    first = report(reporter, rt, 1.0, fallback="backend auto fell back to onnxruntime (TensorRT is not usable here)")
    assert first["inference"].level == DiagnosticStatus.WARN and "fell back" in first["inference"].message
    assert first["inputs"].level == DiagnosticStatus.WARN and "waiting for the first image" in first["inputs"].message
    assert values(first["inference"])["power"] == "no power source: test"

    rt.on_joints(NAMES, [0.0] * 4, 1.0)
    rt.on_image(frame(1.0))
    rt.step(1.0, want_image=False)
    ok = report(reporter, rt, 1.1)
    assert ok["inference"].level == DiagnosticStatus.OK and ok["inputs"].level == DiagnosticStatus.OK, ok
    assert values(ok["inference"])["steps"] == "1"
    assert ok["commands"].level == DiagnosticStatus.OK and ok["commands"].message == "command output off"

    rt.note_bad_input("image", "unsupported image encoding '16UC1'", 1.2)
    rt.counters.missed_deadlines += 1
    warn = report(reporter, rt, 1.2)
    assert warn["inputs"].level == DiagnosticStatus.WARN and "16UC1" in warn["inputs"].message
    assert warn["inference"].level == DiagnosticStatus.WARN and "1 missed deadline" in warn["inference"].message
    assert report(reporter, rt, 1.3)["inference"].level == DiagnosticStatus.OK  # counts since the last report

    stale = report(reporter, rt, 3.0)
    assert stale["inputs"].level == DiagnosticStatus.ERROR and "inputs stale" in stale["inputs"].message
    assert report(reporter, rt, 3.0, state="inactive")["inputs"].level == DiagnosticStatus.OK


def test_power_and_energy_per_frame_from_an_ina3221_tree(model_dir: Path, tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    hwmon = sysfs / "bus/i2c/devices/1-0040/hwmon/hwmon1"
    hwmon.mkdir(parents=True)
    for name, text in {"name": "ina3221", "in1_label": "VDD_IN", "in1_enable": "1", "in1_input": "5000",
                       "curr1_input": "1200"}.items():
        (hwmon / name).write_text(text + "\n")
    (sysfs / "bus/i2c/drivers/ina3221").mkdir(parents=True)
    os.symlink(hwmon.parent.parent, sysfs / "bus/i2c/drivers/ina3221/1-0040")
    clock = [100.0]
    monitor = Ina3221Monitor(None, sysfs_root=sysfs, interval_s=0, clock=lambda: clock[0])
    monitor.start()
    power = PowerSource(monitor=monitor)
    reporter = DiagnosticsReporter("eipl_trt")
    rt = runtime(model_dir)
    report(reporter, rt, 1.0, power=power.read())
    for i in range(10):
        rt.on_joints(NAMES, [0.0] * 4, 1.0 + 0.1 * i)
        rt.on_image(frame(1.0 + 0.1 * i, seed=i))
        assert rt.step(1.0 + 0.1 * i, want_image=False).status == "ok"
    clock[0] += 1.0  # 6 W for 1 s over 10 steps: 0.6 J per frame
    second = values(report(reporter, rt, 2.0, power=power.read())["inference"])
    assert second["power_w"] == "6.00" and second["power_source"] == "ina3221:VDD_IN"
    assert second["energy_per_frame_j"] == "0.6000"
    power.stop()
    assert not power.available and power.read().watts is None
    assert PowerSource("none").read().source.startswith("no power source")
