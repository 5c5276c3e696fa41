"""Start the simulated Pusher robot and the eipl_trt node driving it (what ``eipl-trt control`` runs).

Usage::

    ros2 launch eipl_trt sim.launch.py model:=sarnn precision:=fp32 clock:=lockstep episodes:=5 \\
        results:=/tmp/control.json

Two processes: ``eipl_trt_sim_robot`` (MuJoCo Pusher arm: camera, joint_states, ``/clock`` in
lockstep, forward_position / joint_trajectory controllers) and ``eipl_trt_node`` (the model on
ONNX Runtime, commanding the robot). ``eipl_trt.sim.launch_plan.sim_launch_from_args`` maps the
arguments (also used by ``eipl-trt control`` and the tests, which start the same command lines
without launch). The robot exits after its episodes and writes the scores to ``results``; the
node keeps running (stop the launch with Ctrl-C). Needs the ``[sim]`` extra (MuJoCo).
"""

from __future__ import annotations

from typing import Any

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from eipl_trt.sim.launch_plan import SIM_ARGUMENTS, SIM_DEFAULTS, sim_launch_from_args

_DESCRIPTIONS = {
    "model": "Model to run: a bundled model name (e.g. sarnn) or a directory written by eipl-trt export.",
    "precision": "Inference precision of the node: fp32, fp16 or int8 (the model must ship it).",
    "clock": "Clock of the simulation: lockstep (simulated /clock, waits for each command) or realtime.",
    "command_interface": "How the node commands the arm: forward_position or joint_trajectory controller topics.",
    "episodes": "Number of episodes the simulated robot runs before it exits and writes its results.",
    "first_episode": "Index of the first layout; episode i of seed s is the same layout eipl-trt sim records.",
    "seed": "Layout seed of the episodes; seed 0 holds the bundled models' training and test layouts.",
    "frames": "Camera frames per episode at 10 Hz; the scripted expert needs about 62 of them.",
    "results": "JSON file for the per-episode scores written by the simulated robot; empty means none.",
    "video_out": "Npz file for the camera frames of the first episode; empty means none are saved.",
}


def _nodes(context: LaunchContext, *args: Any, **kwargs: Any) -> list[Node]:
    """The robot and the node, from the launch arguments as performed strings."""
    from eipl_trt.sim.live import robot_limits

    values = {name: LaunchConfiguration(name).perform(context) for name in SIM_ARGUMENTS}
    model = values["model"] or SIM_DEFAULTS["model"]
    plan = sim_launch_from_args(values, robot_limits(model))
    robot = Node(package="eipl_trt", executable=plan.robot_executable, parameters=[plan.robot_parameters],
                 output="screen", emulate_tty=True)
    node = Node(package="eipl_trt", executable=plan.node_executable, parameters=[plan.node_parameters],
                remappings=list(plan.node_remappings), output="screen", emulate_tty=True)
    return [robot, node]


def generate_launch_description() -> LaunchDescription:
    """The simulated robot plus the node."""
    arguments = [DeclareLaunchArgument(name, default_value=SIM_DEFAULTS[name], description=_DESCRIPTIONS[name])
                 for name in SIM_ARGUMENTS]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes)])
