"""The node's parameters, config file and pure-Python parts; a node whose model cannot load stays alive.

The first tests need no ROS: config/eipl_trt.yaml against the declarations, NodeConfig
validation, the joint cache, the latest-only slot and the precision switcher's error path. The
last test starts a real node (``@pytest.mark.ros``) with a model path that does not exist.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from eipl_trt.errors import BackendUnavailableError, InputError, ModelError
from eipl_trt.ros.inputs import JointCache, LatestSlot
from eipl_trt.ros.params import DYNAMIC, PARAMETERS, NodeConfig
from eipl_trt.ros.switcher import PrecisionSwitcher
from eipl_trt.runners import create_runner
from eipl_trt.spec import ModelSpec, Variant
from ros_helpers import REPO, NodeProcess, RosClient, new_domain_id, write_params

CONFIG = REPO / "config" / "eipl_trt.yaml"


def yaml_params() -> dict[str, Any]:
    data = yaml.safe_load(CONFIG.read_text())
    assert list(data) == ["/**"], "the config applies to any node name (/**)"
    return data["/**"]["ros__parameters"]


def test_config_yaml_lists_exactly_the_declared_parameters_with_their_defaults() -> None:
    params = yaml_params()
    assert list(params) == [p.name for p in PARAMETERS]
    for p in PARAMETERS:
        assert params[p.name] == p.default, f"{p.name}: yaml {params[p.name]!r} != declared {p.default!r}"


def test_config_yaml_comments_every_key_and_marks_runtime_ones() -> None:
    lines = CONFIG.read_text().splitlines()
    for p in PARAMETERS:
        i = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{p.name}:"))
        comment = lines[i - 1].strip()
        assert comment.startswith("#") or lines[i - 1].strip().endswith("[]"), f"{p.name} has no comment above it"
    runtime_marked = {p.name for p in PARAMETERS if p.dynamic}
    assert runtime_marked == DYNAMIC == {
        "precision", "max_input_age", "max_step", "joint_lower_limits", "joint_upper_limits", "input_mix"}


def test_defaults_round_trip_and_descriptions_have_units() -> None:
    cfg = NodeConfig.from_values(yaml_params())
    assert cfg == NodeConfig()
    for p in PARAMETERS:
        assert len(p.description) > 20, p.name
    assert "rad" in next(p for p in PARAMETERS if p.name == "max_step").description
    assert "Hz" in next(p for p in PARAMETERS if p.name == "rate_hz").description


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"trigger": "sometimes"}, "trigger must be one of timer, image"),
        ({"precision": "int4"}, "precision must be one of fp32, fp16, bf16, int8"),
        ({"input_mix": 1.5}, r"input_mix must be in \[0.0, 1.0\]"),
        ({"command_interface": "velocity"}, "command_interface must be one of"),
        ({"joint_names": ["a", "a"]}, "joint_names has duplicates"),
        ({"joint_lower_limits": [math.nan]}, "must not contain NaN"),
        ({"model": ""}, "parameter model is empty"),
        ({"autostart": "yes"}, "autostart must be true or false"),
        ({"rate_hz": "fast"}, "rate_hz must be a number"),
        ({"joint_names": "arm_0"}, "joint_names must be a list"),
        ({"colour": 1}, "unknown parameter"),
    ],
)
def test_bad_parameter_values_are_refused(values: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        NodeConfig.from_values(values)


def test_unset_arrays_and_command_topics() -> None:
    cfg = NodeConfig.from_values({"joint_names": None, "joint_upper_limits": None})
    assert cfg.joint_names == () and cfg.joint_upper_limits == ()
    assert cfg.command_topic_name() == ""
    assert cfg.replace({"command_interface": "joint_trajectory"}).command_topic_name() == \
        "joint_trajectory_controller/joint_trajectory"
    custom = cfg.replace({"command_interface": "joint_state", "command_topic": "/arm/cmd"})
    assert custom.command_topic_name() == "/arm/cmd"


def test_joint_cache_merges_partial_messages_by_name() -> None:
    cache = JointCache(["a", "b", "c"])
    assert cache.update(["c", "x", "a"], [3.0, 9.0, 1.0], receipt_s=10.0) == []
    v = cache.vector()
    assert v.missing == ("b",) and not v.complete and v.oldest_receipt_s is None
    assert cache.update(["b"], [2.0], receipt_s=11.0) == []
    v = cache.vector()
    np.testing.assert_array_equal(v.positions, [1.0, 2.0, 3.0])
    assert v.complete and v.oldest_receipt_s == 10.0
    problems = cache.update(["a"], [math.nan], receipt_s=12.0)
    assert problems == ["joint_states has NaN/Inf position for a; kept the previous value"]
    assert cache.vector().positions[0] == 1.0 and cache.vector().oldest_receipt_s == 10.0
    assert "2 names but 1 positions" in cache.update(["a", "b"], [0.0], 13.0)[0]
    assert "none of the model joints" in cache.update(["q"], [0.0], 13.0)[0]
    assert "empty" in cache.update([], [], 13.0)[0]
    cache.clear()
    assert cache.vector().missing == ("a", "b", "c")


@pytest.mark.parametrize(
    ("names", "positions", "problem", "b", "counted"),
    [
        (["a", "b"], [math.inf, 5.0], "joint_states has NaN/Inf position for a; kept the previous value", 5.0, True),
        (["a", "c"], [-math.inf, math.nan], "joint_states has NaN/Inf position for a, c; kept the previous value",
         2.0, True),
        (["a", "b", "a"], [5.0, 5.0, 6.0], "joint_states message names a more than once; ignored (each joint must "
                                           "appear once, with one position)", 2.0, False),
        (["x", "b", "x"], [5.0, 5.0, 5.0], "joint_states message names x more than once; ignored", 2.0, False),
    ],
    ids=["inf", "-inf-and-nan", "duplicate-model-joint", "duplicate-other-joint"],
)
def test_joint_cache_refuses_non_finite_and_duplicate_positions(names: list, positions: list, problem: str, b: float,
                                                                counted: bool) -> None:
    """The refused values never reach the model: the previous positions stay, with their receipt times."""
    cache = JointCache(["a", "b", "c"])
    assert cache.update(["a", "b", "c"], [1.0, 2.0, 3.0], receipt_s=10.0) == []
    problems = cache.update(names, positions, receipt_s=11.0)
    assert len(problems) == 1 and problems[0].startswith(problem), problems
    v = cache.vector()
    np.testing.assert_array_equal(v.positions, [1.0, b, 3.0])
    assert cache.received == (2 if counted else 1)  # a malformed message is not counted as received


def test_latest_slot_counts_overwritten_items() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.take() is None and slot.latest() is None
    assert slot.put(1) is False
    assert slot.put(2) is True  # 1 was never taken: dropped
    assert slot.take() == 2 and slot.take() is None and slot.latest() == 2
    assert slot.put(3) is False
    assert (slot.received, slot.dropped) == (3, 1)
    slot.clear()
    assert slot.latest() is None and slot.take() is None


def test_precision_switcher_reports_failures_and_keeps_running(tmp_path: Path) -> None:
    spec = ModelSpec(
        model="cnnrnn", image_height=128, image_width=128, channel_order="rgb", joint_names=("a", "b"),
        joint_min=(-1.0, -1.0), joint_max=(1.0, 1.0), rate_hz=10.0,
        architecture={"rec_dim": 4, "joint_dim": 2, "feat_dim": 3},
        variants={"fp32": Variant("model.onnx", "0" * 64)},
    )
    spec.save(tmp_path)
    spec = ModelSpec.load(tmp_path)
    errors: list[tuple[str, BaseException]] = []
    done = threading.Event()

    def on_error(precision: str, exc: BaseException) -> None:
        errors.append((precision, exc))
        if len(errors) == 2:
            done.set()

    installed: list[Any] = []
    switcher = PrecisionSwitcher(lambda p: create_runner(spec, "onnxruntime", p), installed.append, on_error)
    switcher.request("fp16")  # not exported: refused by create_runner
    assert switcher.wait_idle(10.0)
    (tmp_path / "model.onnx").write_bytes(b"not an onnx file")
    switcher.request("fp32")  # listed, but the file does not match its hash: refused on open
    assert done.wait(10.0) and switcher.wait_idle(10.0)
    switcher.close()
    assert installed == [] and switcher.switches == 0
    assert errors[0][0] == "fp16" and isinstance(errors[0][1], BackendUnavailableError)
    assert errors[1][0] == "fp32" and isinstance(errors[1][1], ModelError)
    assert "does not match the sha256" in str(errors[1][1])


@pytest.mark.ros
def test_node_without_a_model_stays_alive_and_says_why(tmp_path: Path) -> None:
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from rcl_interfaces.srv import GetParameters, ListParameters
    from rclpy.parameter import parameter_value_to_python
    from std_srvs.srv import Trigger

    domain = new_domain_id()
    missing = tmp_path / "no_such_model"
    node = NodeProcess(tmp_path / "node.log", domain, write_params(tmp_path / "params.yaml"),
                       ["-p", f"model:={missing}"])
    client = RosClient(domain)
    try:
        diagnostics = client.collect(DiagnosticArray, "/diagnostics")
        report = diagnostics.wait(lambda m: True, 20.0, "a /diagnostics report")
        inference = next(s for s in report.status if s.name == "eipl_trt: inference")
        assert inference.level == DiagnosticStatus.ERROR
        assert "no model loaded" in inference.message and "neither an existing path" in inference.message
        state = client.call(GetState, "/eipl_trt/get_state", GetState.Request()).current_state.label
        assert state == "unconfigured"
        reset = client.call(Trigger, "/eipl_trt/reset", Trigger.Request())
        assert not reset.success and "no model loaded" in reset.message
        again = client.call(ChangeState, "/eipl_trt/change_state",
                            ChangeState.Request(transition=Transition(id=Transition.TRANSITION_CONFIGURE)))
        assert not again.success
        names = client.call(ListParameters, "/eipl_trt/list_parameters", ListParameters.Request()).result.names
        assert set(names) - {"use_sim_time", "start_type_description_service"} == {p.name for p in PARAMETERS}
        declared = [p.name for p in PARAMETERS]
        got = client.call(GetParameters, "/eipl_trt/get_parameters", GetParameters.Request(names=declared)).values
        expected = {**yaml_params(), "model": str(missing)}
        for name, value in zip(declared, got):
            python = parameter_value_to_python(value)
            assert (python if python is not None else []) == expected[name], name
        assert "configure failed" in node.log()
    finally:
        client.close()
        code = node.stop()
    assert code == 0


def test_starting_the_node_without_ros_gives_a_clear_error() -> None:
    """`import eipl_trt.ros` works without rclpy; starting the node says what is missing and exits 1."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['rclpy'] = None\n"
        "import eipl_trt.ros, eipl_trt.ros.params, eipl_trt.ros.runtime\n"
        "from eipl_trt.ros.node import main\n"
        "sys.exit(main(['eipl_trt_node']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 1, done.stderr
    assert "needs rclpy" in done.stderr and "pip install -r requirements/ros.txt" in done.stderr
    assert "Traceback" not in done.stderr
