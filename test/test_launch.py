"""robot.launch.py: its arguments (read from the file's AST here; launch is not installable), its
installation, the launch-argument mapping, and the command line it produces starting the real node."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from eipl_trt.errors import InputError
from eipl_trt.ros.launch_args import (
    NODE_ARGUMENTS,
    NodeLaunch,
    default_params_file,
    node_launch_from_args,
    node_launches_from_args,
    parse_bool,
    write_overrides_file,
)
from ros_helpers import new_domain_id

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / "launch" / "robot.launch.py"
PARAMS_FILE = REPO / "config" / "eipl_trt.yaml"
DOCUMENTED_ARGUMENTS = {
    "model", "backend", "precision", "namespace", "image_topic", "image_transport", "joint_states_topic",
    "command_interface", "use_sim_time", "params_file", "rqt", "aggregator", "models",
}


def _declarations() -> dict[str, dict[str, Any]]:
    """DeclareLaunchArgument calls in the launch file: name -> {variable, default, description}."""
    tree = ast.parse(LAUNCH_FILE.read_text())
    found: dict[str, dict[str, Any]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        if getattr(call.func, "id", getattr(call.func, "attr", None)) != "DeclareLaunchArgument":
            continue
        keywords = {k.arg: k.value for k in call.keywords}
        name = ast.literal_eval(call.args[0])
        default = keywords.get("default_value")
        found[name] = {
            "variable": node.targets[0].id,  # type: ignore[attr-defined]
            "default": ast.literal_eval(default) if isinstance(default, ast.Constant) else ast.unparse(default),
            "description": ast.literal_eval(keywords["description"]),
        }
    return found


def test_launch_file_declares_the_documented_arguments() -> None:
    tree = ast.parse(LAUNCH_FILE.read_text())
    assert ast.get_docstring(tree) and "ros2 launch eipl_trt robot.launch.py" in ast.get_docstring(tree)
    declared = _declarations()
    assert set(declared) == DOCUMENTED_ARGUMENTS
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "DeclareLaunchArgument"]
    assert len(calls) == len(declared), "every DeclareLaunchArgument is a named variable"
    assert set(NODE_ARGUMENTS) == DOCUMENTED_ARGUMENTS - {"rqt", "aggregator"}
    for name, decl in declared.items():
        text = decl["description"]
        assert decl["variable"] == f"arg_{name}"
        assert text[0].isupper() and text.endswith(".") and len(text.split()) >= 8, f"{name}: {text!r}"
    # Overriding arguments default to "" (= keep the YAML/node default); the two switches to false.
    overriding = DOCUMENTED_ARGUMENTS - {"rqt", "aggregator", "params_file"}
    assert {name: declared[name]["default"] for name in overriding} == dict.fromkeys(overriding, "")
    assert declared["rqt"]["default"] == declared["aggregator"]["default"] == "false"
    assert "FindPackageShare" in declared["params_file"]["default"]
    assert "eipl_trt.yaml" in declared["params_file"]["default"]
    # Every declaration ends up in the returned LaunchDescription.
    listed = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id.startswith("arg_")}
    assert listed == {d["variable"] for d in declared.values()}


def test_setup_installs_the_launch_and_config_files(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("setuptools")
    from distutils.core import run_setup  # setuptools' copy; the stdlib one is gone in 3.12

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "argv", ["setup.py"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # setuptools: "Unknown distribution option: 'tests_require'"
        dist = run_setup(str(REPO / "setup.py"), stop_after="init")
    data_files = dict(dist.data_files)
    assert "launch/robot.launch.py" in data_files["share/eipl_trt/launch"]
    assert {"config/diagnostic_analyzers.yaml", "config/eipl_trt.perspective"} <= set(
        data_files["share/eipl_trt/config"]
    )
    installed = Path(sys.prefix) / "share" / "eipl_trt" / "launch" / "robot.launch.py"
    if not (Path(sys.prefix) / "share" / "eipl_trt").is_dir():
        pytest.skip("eipl_trt is not pip-installed into this environment (run `make install`)")
    assert installed.is_file()


def test_empty_arguments_override_nothing() -> None:
    plan = node_launch_from_args({name: "" for name in NODE_ARGUMENTS}, params_file_default=PARAMS_FILE)
    assert plan == NodeLaunch(params_file=str(PARAMS_FILE.resolve()))
    assert plan.command() == ["eipl_trt_node", "--ros-args", "--params-file", str(PARAMS_FILE.resolve())]
    assert Path(default_params_file()).name == "eipl_trt.yaml" and Path(default_params_file()).is_file()


def test_given_arguments_become_typed_overrides_and_remaps(tmp_path: Path) -> None:
    plan = node_launch_from_args(
        {
            "model": "123",  # a directory literally named 123 must stay a string
            "backend": "onnxruntime",
            "precision": " fp32 ",
            "namespace": "left_arm/",
            "image_topic": "/camera/color/image_raw",
            "image_transport": "compressed",
            "joint_states_topic": "joint_states_merged",
            "command_interface": "forward_position",
            "use_sim_time": "True",
            "params_file": str(PARAMS_FILE),
            "rqt": "true",
        }
    )
    assert plan.overrides == {
        "model": "123", "backend": "onnxruntime", "precision": "fp32",
        "command_interface": "forward_position", "image_transport": "compressed", "use_sim_time": True,
    }
    assert plan.namespace == "/left_arm"
    assert plan.remappings == (("image_raw", "/camera/color/image_raw"), ("joint_states", "joint_states_merged"),
                               ("image_raw/compressed", "/camera/color/image_raw/compressed"))
    overrides = write_overrides_file(plan.overrides, tmp_path)
    assert overrides.parent == tmp_path and overrides.name.startswith("launch_params_")
    assert yaml.safe_load(overrides.read_text()) == {"/**": {"ros__parameters": plan.overrides}}
    assert "'123'" in overrides.read_text()
    assert plan.command(overrides) == [
        "eipl_trt_node", "--ros-args", "-r", "__ns:=/left_arm",
        "--params-file", str(PARAMS_FILE.resolve()), "--params-file", str(overrides),
        "-r", "image_raw:=/camera/color/image_raw", "-r", "joint_states:=joint_states_merged",
        "-r", "image_raw/compressed:=/camera/color/image_raw/compressed",
    ]
    with pytest.raises(InputError, match="pass the file write_overrides_file"):
        plan.command()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"backend": "cuda"}, "backend must be one of auto, .*integer, got 'cuda'"),
        ({"precision": "int4"}, "precision must be one of fp32, fp16, bf16, int8"),
        ({"command_interface": "velocity"}, "command_interface must be one of none, joint_state"),
        ({"use_sim_time": "maybe"}, "use_sim_time must be true or false, got 'maybe'"),
        ({"namespace": "1robot"}, "namespace '1robot' is not a valid ROS namespace"),
        ({"image_topic": "/camera//image"}, "image_topic '/camera//image' is not a valid ROS topic"),
        ({"joint_states_topic": "joint states"}, "joint_states_topic 'joint states' is not a valid"),
        ({"params_file": "/nonexistent/eipl.yaml"}, "params_file '/nonexistent/eipl.yaml' does not exist"),
        ({"modle": "sarnn"}, r"unknown launch argument\(s\) \['modle'\]"),
    ],
)
def test_bad_launch_arguments_are_named(args: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        node_launch_from_args(args, params_file_default=PARAMS_FILE)


def test_parse_bool_accepts_launch_spellings() -> None:
    assert [parse_bool(t, "x") for t in ("true", "False", "1", "0", " yes ", "NO")] == [
        True, False, True, False, True, False,
    ]


def test_launch_description_builds_with_launch_ros() -> None:
    pytest.importorskip("launch_ros")
    from launch import LaunchContext

    spec = importlib.util.spec_from_file_location("robot_launch", LAUNCH_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    arguments = {arg.name: arg for arg in description.get_launch_arguments()}
    assert set(arguments) == DOCUMENTED_ARGUMENTS
    assert all(arg.description.endswith(".") for arg in arguments.values())
    context = LaunchContext()
    for name in NODE_ARGUMENTS:
        context.launch_configurations[name] = ""
    context.launch_configurations.update(
        {"params_file": str(PARAMS_FILE), "backend": "onnxruntime", "aggregator": "false"}
    )
    node, aggregator = module._configured_nodes(context)
    assert (node.node_package, node.node_executable) == ("eipl_trt", "eipl_trt_node")
    assert (aggregator.node_package, aggregator.node_executable) == ("diagnostic_aggregator", "aggregator_node")


# --------------------------------------------------------------------------- analyzers, perspective

ANALYZERS_FILE = REPO / "config" / "diagnostic_analyzers.yaml"
PERSPECTIVE_FILE = REPO / "config" / "eipl_trt.perspective"


def _generic_analyzers(tree: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """GenericAnalyzer blocks by dotted key, walking AnalyzerGroups."""
    found: dict[str, dict[str, Any]] = {}
    for key, block in tree.items():
        if not isinstance(block, dict) or "type" not in block:
            continue
        if block["type"] == "diagnostic_aggregator/AnalyzerGroup":
            found.update({f"{key}.{k}": v for k, v in _generic_analyzers(block["analyzers"]).items()})
        else:
            assert block["type"] == "diagnostic_aggregator/GenericAnalyzer"
            found[key] = block
    return found


def _matches(analyzer: dict[str, Any], name: str) -> bool:
    """diagnostic_aggregator GenericAnalyzer::match (name, expected, startswith, contains)."""
    return (
        name in analyzer.get("name", []) or name in analyzer.get("expected", [])
        or any(name.startswith(p) for p in analyzer.get("startswith", []) + analyzer.get("find_and_remove_prefix", []))
        or any(p in name for p in analyzer.get("contains", []))
    )


def test_analyzers_match_every_status_the_node_reports() -> None:
    pytest.importorskip("diagnostic_msgs")
    from builtin_interfaces.msg import Time

    from eipl_trt.ros.diagnostics import DiagnosticsReporter, PowerReading
    from eipl_trt.ros.lifecycle import NODE_NAME
    from eipl_trt.ros.params import NodeConfig

    params = yaml.safe_load(ANALYZERS_FILE.read_text())["analyzers"]["ros__parameters"]
    group = params["eipl_trt"]
    assert (group["type"], group["path"]) == ("diagnostic_aggregator/AnalyzerGroup", "eipl_trt")
    analyzers = _generic_analyzers(params)
    assert all(a["path"] and a.get("timeout", 5.0) > 0 for a in analyzers.values())
    report = DiagnosticsReporter(NODE_NAME).build(
        Time(), 0.0, "unconfigured", NodeConfig(), None, "", None, "", PowerReading(None, "no power source")
    )
    names = [status.name for status in report.status]
    assert names == ["eipl_trt: inference", "eipl_trt: inputs", "eipl_trt: commands"]
    for name in names:
        assert [key for key, a in analyzers.items() if _matches(a, name)] == ["eipl_trt.node"], name
    assert set(analyzers["eipl_trt.node"]["expected"]) == set(names)


def _perspective_values() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    data = json.loads(PERSPECTIVE_FILE.read_text())
    manager = data["groups"]["pluginmanager"]

    def values(group: dict[str, Any]) -> dict[str, Any]:
        keys = group["groups"]["plugin"]["keys"]
        assert all(v["type"] == "repr" for v in keys.values())
        return {k: ast.literal_eval(v["repr"]) for k, v in keys.items()}

    plugins = ast.literal_eval(manager["keys"]["running-plugins"]["repr"])
    return plugins, {name: values(group) for name, group in manager["groups"].items()}


def test_perspective_shows_the_nodes_topics() -> None:
    from eipl_trt.ros.outputs import TIMING_FIELDS

    plugins, groups = _perspective_values()
    assert plugins == {
        "rqt_robot_monitor/RobotMonitor": [1], "rqt_plot/Plot": [1, 2],
        "rqt_image_view/ImageView": [1], "rqt_reconfigure/Param": [1],
    }
    # rqt names an instance's settings group plugin__<package>__<class>__<serial>.
    assert set(groups) == {
        f"plugin__{plugin.replace('/', '__')}__{serial}" for plugin, serials in plugins.items() for serial in serials
    }
    assert groups["plugin__rqt_image_view__ImageView__1"]["topic"] == "/eipl_trt/attention_image"
    plotted = groups["plugin__rqt_plot__Plot__1"]["topics"] + groups["plugin__rqt_plot__Plot__2"]["topics"]
    fields = [TIMING_FIELDS[int(t.split("[")[1].rstrip("]"))] for t in plotted]
    assert all(t.startswith("/eipl_trt/timing/position[") for t in plotted)
    assert fields == ["preprocess_ms", "inference_ms", "postprocess_ms", "step_ms", "input_age_ms", "image_latency_ms"]
    for serial in (1, 2):
        plot = groups[f"plugin__rqt_plot__Plot__{serial}"]
        assert plot["autoscroll"] is True and len(plot["x_limits"]) == len(plot["y_limits"]) == 2


# --------------------------------------------------------------------------- the command line, run for real


@pytest.fixture(scope="module")
def sarnn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    testing = pytest.importorskip("eipl_trt.models.testing")
    out = tmp_path_factory.mktemp("sarnn")
    testing.make_test_model("sarnn", out, seed=0)
    return out


def test_setup_declares_the_console_script_the_command_runs() -> None:
    tree = ast.parse((REPO / "setup.py").read_text())
    scripts = [ast.literal_eval(n) for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert "eipl_trt_node = eipl_trt.ros.node:main" in scripts  # so `python -m eipl_trt.ros.node` == eipl_trt_node


@pytest.mark.ros
@pytest.mark.slow
def test_launch_command_line_starts_the_node_and_it_predicts(sarnn_dir: Path, tmp_path: Path) -> None:
    rclpy = pytest.importorskip("rclpy")
    from diagnostic_msgs.msg import DiagnosticArray
    from rcl_interfaces.srv import GetParameters
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState

    from eipl_trt.spec import ModelSpec

    spec = ModelSpec.load(sarnn_dir)
    # A site params file: backend auto (overridden below), a non-default max_step and rate (kept).
    params = yaml.safe_load(PARAMS_FILE.read_text())
    params["/**"]["ros__parameters"].update({"max_step": 0.2, "rate_hz": 20.0, "backend": "auto"})
    site_params = tmp_path / "site.yaml"
    site_params.write_text(yaml.safe_dump(params))
    plan = node_launch_from_args({
        "model": str(sarnn_dir), "backend": "onnxruntime", "namespace": "robot1", "image_topic": "/cam/image",
        "joint_states_topic": "/arm/joint_states", "command_interface": "joint_state", "use_sim_time": "false",
        "params_file": str(site_params), "precision": "",
    })
    command = plan.command(write_overrides_file(plan.overrides, tmp_path))
    # The console script is setup.py's `eipl_trt_node = eipl_trt.ros.node:main`; run that module with
    # this interpreter so the test exercises this checkout, not a possibly stale installed copy.
    command[0:1] = [sys.executable, "-m", "eipl_trt.ros.node"]
    domain_id = new_domain_id()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), PYTHONPATH=str(REPO))
    log = (tmp_path / "node.log").open("w")
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node("launch_test_probe", context=context)
    got: dict[str, list[Any]] = {"predicted": [], "commands": [], "timing": [], "diagnostics": []}
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(JointState, "/robot1/eipl_trt/predicted_joint_states", got["predicted"].append, reliable)
    node.create_subscription(JointState, "/robot1/eipl_trt/joint_commands", got["commands"].append, reliable)
    node.create_subscription(JointState, "/robot1/eipl_trt/timing", got["timing"].append, reliable)
    node.create_subscription(DiagnosticArray, "/diagnostics", got["diagnostics"].append, 10)
    image_pub = node.create_publisher(Image, "/cam/image", qos_profile_sensor_data)
    joint_pub = node.create_publisher(JointState, "/arm/joint_states", qos_profile_sensor_data)
    height, width = spec.image_height, spec.image_width
    pixels = bytes(np.random.default_rng(0).integers(0, 255, height * width * 3, dtype=np.uint8))
    middle = [(lo + hi) / 2 for lo, hi in zip(spec.joint_min, spec.joint_max)]
    try:
        deadline = time.monotonic() + 90.0
        while time.monotonic() < deadline and not (
            len(got["predicted"]) >= 3 and got["commands"] and got["timing"] and got["diagnostics"]
        ):
            assert proc.poll() is None, f"node exited: {(tmp_path / 'node.log').read_text()[-3000:]}"
            assert "configure failed" not in (tmp_path / "node.log").read_text(), (tmp_path / "node.log").read_text()
            stamp = node.get_clock().now().to_msg()
            joint_pub.publish(JointState(header=_header(stamp), name=list(spec.joint_names), position=middle))
            image_pub.publish(Image(header=_header(stamp), height=height, width=width, encoding="rgb8",
                                    step=3 * width, data=pixels))
            _spin(rclpy, node, context, 0.05)
        log.flush()
        assert len(got["predicted"]) >= 3, f"no predictions; node log:\n{(tmp_path / 'node.log').read_text()[-3000:]}"
        prediction = got["predicted"][-1]
        assert list(prediction.name) == list(spec.joint_names)
        assert len(prediction.position) == len(spec.joint_names) and np.isfinite(prediction.position).all()
        assert got["commands"] and list(got["commands"][-1].name) == list(spec.joint_names)
        # The perspective plots ~/timing by index: the labels there must be the fields it names.
        from eipl_trt.ros.outputs import TIMING_FIELDS

        assert list(got["timing"][-1].name)[: len(TIMING_FIELDS)] == list(TIMING_FIELDS)
        # Every status the node publishes is caught by the analyzers (none would land in "Other").
        analyzers = _generic_analyzers(yaml.safe_load(ANALYZERS_FILE.read_text())["analyzers"]["ros__parameters"])
        names = {s.name for msg in got["diagnostics"] for s in msg.status}
        assert names == set(analyzers["eipl_trt.node"]["expected"])
        # Overrides beat the params file; values only in the params file are kept.
        values = _get_parameters(rclpy, node, context, GetParameters, "/robot1/eipl_trt",
                                 ["model", "backend", "command_interface", "use_sim_time", "max_step", "rate_hz"])
        assert values == [str(sarnn_dir), "onnxruntime", "joint_state", False, 0.2, 20.0]
        topics = {name for name, _types in node.get_topic_names_and_types()}
        assert {"/robot1/eipl_trt/attention_image", "/robot1/eipl_trt/timing", "/cam/image"} <= topics
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
        log.close()
        node.destroy_node()
        context.try_shutdown()
    assert code == 0, (tmp_path / "node.log").read_text()[-3000:]


def _header(stamp: Any) -> Any:
    from std_msgs.msg import Header

    return Header(stamp=stamp, frame_id="camera")


def _spin(rclpy: Any, node: Any, context: Any, seconds: float) -> None:
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=max(0.0, end - time.monotonic()))
    executor.remove_node(node)


def _get_parameters(rclpy: Any, node: Any, context: Any, srv: Any, fqn: str, names: list[str]) -> list[Any]:
    from rclpy.parameter import parameter_value_to_python

    client = node.create_client(srv, f"{fqn}/get_parameters")
    assert client.wait_for_service(timeout_sec=10.0), f"{fqn}/get_parameters not available"
    future = client.call_async(srv.Request(names=names))
    deadline = time.monotonic() + 10.0
    while not future.done() and time.monotonic() < deadline:
        _spin(rclpy, node, context, 0.05)
    assert future.done(), "get_parameters timed out"
    return [parameter_value_to_python(v) for v in future.result().values]


def test_models_map_to_one_namespaced_node_each_on_shared_sensors() -> None:
    assert node_launches_from_args({"model": "sarnn"}, params_file_default=PARAMS_FILE) == [
        node_launch_from_args({"model": "sarnn"}, params_file_default=PARAMS_FILE)]
    plans = node_launches_from_args({"models": " sarnn, /data/models/cnnrnn_v2/model.json ", "namespace": "lab",
                                     "backend": "openvino", "joint_states_topic": "joints"},
                                    params_file_default=PARAMS_FILE)
    assert [p.namespace for p in plans] == ["/lab/sarnn", "/lab/cnnrnn_v2"]
    assert [p.overrides["model"] for p in plans] == ["sarnn", "/data/models/cnnrnn_v2/model.json"]
    assert all(p.overrides["backend"] == "openvino" for p in plans)
    for p in plans:  # one camera and one joint_states topic feed every model
        assert dict(p.remappings) == {"image_raw": "/lab/image_raw", "image_raw/compressed": "/lab/image_raw/compressed",
                                      "joint_states": "/lab/joints"}
    one = node_launches_from_args({"models": "cnnrnn", "image_topic": "/cam/image"}, params_file_default=PARAMS_FILE)
    assert len(one) == 1 and one[0].namespace == "/cnnrnn" and dict(one[0].remappings)["image_raw"] == "/cam/image"
    assert dict(one[0].remappings)["joint_states"] == "/joint_states"
    with pytest.raises(InputError, match="node_launches_from_args"):
        node_launch_from_args({"models": "sarnn,cnnrnn"}, params_file_default=PARAMS_FILE)


@pytest.mark.parametrize("args, message", [
    ({"models": "sarnn", "model": "cnnrnn"}, "either model:= .* or models:="),
    ({"models": "sarnn,,cnnrnn"}, "has an empty entry"),
    ({"models": "sarnn,a/sarnn"}, "names sarnn twice"),
    ({"models": "sarnn,cnnrnn", "command_interface": "forward_position"}, "only one node may command"),
    ({"models": "sarnn,cnnrnn", "backend": "cuda"}, "backend must be one of"),
])
def test_models_refusals(args: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        node_launches_from_args(args, params_file_default=PARAMS_FILE)


@pytest.mark.ros
@pytest.mark.slow
def test_models_launch_runs_two_real_nodes_on_one_camera(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    rclpy = pytest.importorskip("rclpy")
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState

    testing = pytest.importorskip("eipl_trt.models.testing")
    root = tmp_path_factory.mktemp("models")
    # two different networks with the same inputs: one sensor stream feeds both
    specs = {name: testing.make_test_model("sarnn", root / name, seed=seed) for name, seed in (("sarnn_a", 0), ("sarnn_b", 1))}
    plans = node_launches_from_args({"models": ",".join(str(root / n) for n in specs), "backend": "onnxruntime",
                                     "image_topic": "/cam/image", "params_file": str(PARAMS_FILE)})
    domain_id = new_domain_id()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), PYTHONPATH=str(REPO))
    procs = []
    for i, plan in enumerate(plans):
        command = plan.command(write_overrides_file(plan.overrides, tmp_path))
        command[0:1] = [sys.executable, "-m", "eipl_trt.ros.node"]
        procs.append(subprocess.Popen(command, env=env, stdout=(tmp_path / f"node{i}.log").open("w"),
                                      stderr=subprocess.STDOUT, cwd=tmp_path))
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node("models_probe", context=context)
    got: dict[str, list[Any]] = {name: [] for name in specs}
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    for name in specs:
        node.create_subscription(JointState, f"/{name}/eipl_trt/predicted_joint_states", got[name].append, reliable)
    image_pub = node.create_publisher(Image, "/cam/image", qos_profile_sensor_data)
    joint_pub = node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
    spec = specs["sarnn_a"]
    height, width = spec.image_height, spec.image_width
    pixels = bytes(np.random.default_rng(0).integers(0, 255, height * width * 3, dtype=np.uint8))
    middle = [(lo + hi) / 2 for lo, hi in zip(spec.joint_min, spec.joint_max)]
    logs = lambda: "\n".join((tmp_path / f"node{i}.log").read_text()[-2000:] for i in range(len(procs)))  # noqa: E731
    try:
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline and not all(len(v) >= 3 for v in got.values()):
            assert all(p.poll() is None for p in procs), f"a node exited: {logs()}"
            stamp = node.get_clock().now().to_msg()
            joint_pub.publish(JointState(header=_header(stamp), name=list(spec.joint_names), position=middle))
            image_pub.publish(Image(header=_header(stamp), height=height, width=width, encoding="rgb8",
                                    step=3 * width, data=pixels))
            _spin(rclpy, node, context, 0.05)
        assert all(len(v) >= 3 for v in got.values()), f"{ {k: len(v) for k, v in got.items()} }; {logs()}"
        # The two models are different networks: same inputs, different predictions.
        a, b = (np.array(got[n][-1].position) for n in specs)
        assert np.isfinite(a).all() and np.isfinite(b).all() and not np.allclose(a, b)
    finally:
        codes = []
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                codes.append(p.wait(timeout=20))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(None)
        node.destroy_node()
        context.try_shutdown()
    assert codes == [0, 0], logs()
