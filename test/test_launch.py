"""robot.launch.py: its arguments (read from the file's AST here; launch is not installable), its
installation, the launch-argument mapping, and the command line it produces starting the real node."""

from __future__ import annotations

import ast
import importlib.util
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from eipl_trt.errors import InputError
from eipl_trt.launch_args import (
    NODE_ARGUMENTS,
    NodeLaunch,
    default_params_file,
    node_launch_from_args,
    parse_bool,
    write_overrides_file,
)

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / "launch" / "robot.launch.py"
PARAMS_FILE = REPO / "config" / "eipl_trt.yaml"
DOCUMENTED_ARGUMENTS = {
    "model", "backend", "precision", "namespace", "image_topic", "joint_states_topic",
    "command_interface", "use_sim_time", "params_file", "rqt", "aggregator",
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
            "joint_states_topic": "joint_states_merged",
            "command_interface": "forward_position",
            "use_sim_time": "True",
            "params_file": str(PARAMS_FILE),
            "rqt": "true",
        }
    )
    assert plan.overrides == {
        "model": "123", "backend": "onnxruntime", "precision": "fp32",
        "command_interface": "forward_position", "use_sim_time": True,
    }
    assert plan.namespace == "/left_arm"
    assert plan.remappings == (("image_raw", "/camera/color/image_raw"), ("joint_states", "joint_states_merged"))
    overrides = write_overrides_file(plan.overrides, tmp_path)
    assert overrides.parent == tmp_path and overrides.name.startswith("launch_params_")
    assert yaml.safe_load(overrides.read_text()) == {"/**": {"ros__parameters": plan.overrides}}
    assert "'123'" in overrides.read_text()
    assert plan.command(overrides) == [
        "eipl_trt_node", "--ros-args", "-r", "__ns:=/left_arm",
        "--params-file", str(PARAMS_FILE.resolve()), "--params-file", str(overrides),
        "-r", "image_raw:=/camera/color/image_raw", "-r", "joint_states:=joint_states_merged",
    ]
    with pytest.raises(InputError, match="pass the file write_overrides_file"):
        plan.command()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"backend": "cuda"}, "backend must be one of auto, onnxruntime, tensorrt, got 'cuda'"),
        ({"precision": "bf16"}, "precision must be one of fp32, fp16, int8"),
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
