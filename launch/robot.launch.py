"""Start the eipl_trt node on a robot, optionally with the diagnostics aggregator and an rqt dashboard.

Usage::

    ros2 launch eipl_trt robot.launch.py model:=/path/to/model_dir \\
        image_topic:=/camera/color/image_raw joint_states_topic:=/joint_states \\
        command_interface:=forward_position aggregator:=true rqt:=true

    # several models side by side, one node (process) each in /sarnn and /cnnrnn, one camera:
    ros2 launch eipl_trt robot.launch.py models:=sarnn,cnnrnn image_topic:=/camera/color/image_raw

Every node setting has exactly one default: the node's parameter declarations, repeated in
``config/eipl_trt.yaml`` (the ``params_file``). The ``DeclareLaunchArgument`` calls below are
generated from those declarations (``python -m eipl_trt.ros.paramdocs --write``), and
docs/parameters.md lists them. The launch arguments that override parameters default to the empty
string, which means "do not override": nothing is passed for them. A given value is passed after
the params file, so it wins. ``eipl_trt.ros.launch_args`` does the mapping
(also used by the tests, which run the resulting command line without launch).

The node is started with a plain ``Node`` action: it is a lifecycle node that configures and
activates itself (parameter ``autostart``, true in the YAML), which works on every ROS 2 distro.
Set ``autostart: false`` in a params file to drive the transitions from a lifecycle manager.
"""

from __future__ import annotations

from typing import Any

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from eipl_trt.ros.launch_args import NODE_ARGUMENTS, PACKAGE, NodeLaunch, node_launches_from_args


def _node(plan: NodeLaunch) -> Node:
    """One eipl_trt node from its validated plan."""
    # Typed values: strings stay strings (launch_ros would otherwise YAML-parse "1" into an int).
    overrides = {
        name: ParameterValue(value, value_type=str) if isinstance(value, str) else value
        for name, value in plan.overrides.items()
    }
    return Node(
        package=PACKAGE,
        executable=plan.executable,
        namespace=plan.namespace or None,
        parameters=[plan.params_file, overrides] if overrides else [plan.params_file],
        remappings=list(plan.remappings),
        output="screen",
        emulate_tty=True,
    )


def _configured_nodes(context: LaunchContext, *args: Any, **kwargs: Any) -> list[Node]:
    """The eipl_trt node(s) (one per model with models:=) and the aggregator, from the performed arguments."""
    values = {name: LaunchConfiguration(name).perform(context) for name in NODE_ARGUMENTS}
    plans = node_launches_from_args(values)
    nodes = [_node(plan) for plan in plans]
    plan = plans[0]
    analyzers = PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "diagnostic_analyzers.yaml"])
    sim_time = [{"use_sim_time": plan.overrides["use_sim_time"]}] if "use_sim_time" in plan.overrides else []
    aggregator = Node(
        package="diagnostic_aggregator",
        executable="aggregator_node",
        parameters=[analyzers, *sim_time],
        output="screen",
        condition=IfCondition(LaunchConfiguration("aggregator")),
    )
    return [*nodes, aggregator]


def generate_launch_description() -> LaunchDescription:
    """The node, plus diagnostic_aggregator if ``aggregator:=true`` and rqt if ``rqt:=true``."""
    return LaunchDescription([*_launch_arguments(), OpaqueFunction(function=_configured_nodes), _rqt()])


def _rqt() -> Node:
    """rqt with the eipl_trt perspective, started if ``rqt:=true``."""
    return Node(
        package="rqt_gui",
        executable="rqt_gui",
        arguments=[
            "--force-discover",
            "--perspective-file",
            PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "eipl_trt.perspective"]),
        ],
        output="screen",
        condition=IfCondition(LaunchConfiguration("rqt")),
    )


def _launch_arguments() -> list[DeclareLaunchArgument]:
    """Every launch argument, in the order ``ros2 launch --show-args`` lists them."""
    # Generated from eipl_trt/ros/params.py and eipl_trt/ros/launch_args.py by `python -m eipl_trt.ros.paramdocs
    # --write`: edit those, not the lines between the markers.
    # BEGIN GENERATED launch arguments
    arg_model = DeclareLaunchArgument(
        "model",
        default_value="",
        description="Bundled model name (e.g. sarnn) or a model directory, model.json or model.onnx written "
        "by `eipl-trt export`. Empty keeps the value from params_file.",
    )
    arg_models = DeclareLaunchArgument(
        "models",
        default_value="",
        description="Several models side by side, comma separated (e.g. sarnn,cnnrnn): one node per model in "
        "namespace/<model>, all reading the same camera and joint states. Empty starts the one model of "
        "model.",
    )
    arg_backend = DeclareLaunchArgument(
        "backend",
        default_value="",
        description="Inference backend: auto (TensorRT if usable, else the fastest CPU backend at parity: "
        "ONNX Runtime or OpenVINO; see docs/backends.md), onnxruntime, openvino, tensorrt, or integer (the "
        "quantization lab's integer-only model in <model dir>/intonly, precision int8; numpy, slow). Empty "
        "keeps the value from params_file.",
    )
    arg_precision = DeclareLaunchArgument(
        "precision",
        default_value="",
        description="Model precision: fp32, fp16, int8 (the model's variants), or bf16 (the fp32 file with "
        "bfloat16 arithmetic, on CPUs that have it). Switchable at runtime: the new runner is prepared in the "
        "background and swapped in at a step boundary with the LSTM state handed over; an unavailable "
        "precision is refused. Empty keeps the value from params_file.",
    )
    arg_namespace = DeclareLaunchArgument(
        "namespace",
        default_value="",
        description="Namespace for the node and its topics (e.g. left_arm). Empty starts it without a "
        "namespace; note that the rqt perspective shows the topics of the node without a namespace.",
    )
    arg_image_topic = DeclareLaunchArgument(
        "image_topic",
        default_value="",
        description="Camera topic (sensor_msgs/Image) remapped to the node's image_raw input, and its "
        "/compressed sibling to image_raw/compressed. Empty keeps image_raw, resolved in the node's "
        "namespace.",
    )
    arg_image_transport = DeclareLaunchArgument(
        "image_transport",
        default_value="",
        description="Camera transport: raw = sensor_msgs/Image on image_raw; compressed = "
        "sensor_msgs/CompressedImage (JPEG or PNG, as compressed_image_transport publishes it) on "
        "image_raw/compressed, decoded with OpenCV (pip install eipl_trt[camera]). Remap the topic the "
        "transport uses, e.g. -r image_raw/compressed:=/camera/image_raw/compressed. Empty keeps the value "
        "from params_file.",
    )
    arg_joint_states_topic = DeclareLaunchArgument(
        "joint_states_topic",
        default_value="",
        description="Joint state topic (sensor_msgs/JointState) remapped to the node's joint_states input. "
        "Empty keeps joint_states, resolved in the node's namespace.",
    )
    arg_command_interface = DeclareLaunchArgument(
        "command_interface",
        default_value="",
        description="Robot command output: none, joint_state (sensor_msgs/JointState), forward_position "
        "(std_msgs/Float64MultiArray for a forward_command_controller) or joint_trajectory "
        "(trajectory_msgs/JointTrajectory, one point at 1/rate). Commands are clamped to the joint limits, "
        "rate-limited by max_step and stopped when inputs are stale or outputs not finite. Empty keeps the "
        "value from params_file.",
    )
    arg_use_sim_time = DeclareLaunchArgument(
        "use_sim_time",
        default_value="",
        description="Set to true to follow /clock (rosbag replay or simulation), false to use wall time. "
        "Empty keeps the node default (false).",
    )
    arg_params_file = DeclareLaunchArgument(
        "params_file",
        default_value=PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "eipl_trt.yaml"]),
        description="YAML parameter file of the node; the other arguments override its values when given. "
        "Defaults to the installed config/eipl_trt.yaml.",
    )
    arg_rqt = DeclareLaunchArgument(
        "rqt",
        default_value="false",
        description="Set to true to open rqt with the eipl_trt perspective (robot monitor, timing plot, "
        "attention image, parameters).",
    )
    arg_aggregator = DeclareLaunchArgument(
        "aggregator",
        default_value="false",
        description="Set to true to start diagnostic_aggregator with config/diagnostic_analyzers.yaml, so "
        "rqt_robot_monitor shows the node's diagnostics under eipl_trt.",
    )
    return [
        arg_model,
        arg_models,
        arg_backend,
        arg_precision,
        arg_namespace,
        arg_image_topic,
        arg_image_transport,
        arg_joint_states_topic,
        arg_command_interface,
        arg_use_sim_time,
        arg_params_file,
        arg_rqt,
        arg_aggregator,
    ]
    # END GENERATED launch arguments
