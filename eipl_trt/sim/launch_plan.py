"""How ``sim.launch.py``'s arguments become the two processes it starts (pure Python, no launch needed).

``launch/sim.launch.py`` and ``eipl-trt control`` both call :func:`sim_launch_from_args`, so the
robot and the node are started the same way from a launch file and from the command. Tests run
the resulting command lines without launch.

* ``eipl_trt_sim_robot``: the simulated Pusher arm (clock, episodes, layouts, results file).
* ``eipl_trt_node``: the model, ``backend: onnxruntime``, ``command_interface`` as given, its
  image input remapped to the robot's ``camera/image_raw``, its command clamp set to the robot's
  joint limits intersected with the model's joint bounds, ``trigger: image`` (one step per frame, on the
  freshest frame) and ``trajectory_timing: stamp`` (the node default: points anchored to the frame's
  stamp, which the robot's trajectory controller honours as ros2_controllers' does). In lockstep it
  runs with ``use_sim_time`` (the robot waits for the step's command before it simulates on); in real
  time on the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from eipl_trt.errors import InputError
from eipl_trt.paths import DEFAULT_CONTROLLER

__all__ = ["SIM_ARGUMENTS", "SIM_DEFAULTS", "SimLaunch", "sim_launch_from_args", "format_value"]

#: Launch argument -> default (strings, as launch performs them).
SIM_DEFAULTS: dict[str, str] = {
    "model": DEFAULT_CONTROLLER,
    "precision": "fp32",
    "clock": "realtime",
    "command_interface": "joint_trajectory",
    "episodes": "5",
    "first_episode": "0",
    "seed": "1",
    "frames": "70",
    "results": "",
    "video_out": "",
}
SIM_ARGUMENTS: tuple[str, ...] = tuple(SIM_DEFAULTS)
_PRECISIONS = ("fp32", "fp16", "bf16", "int8")


def format_value(value: Any) -> str:
    """A parameter value as ``-p name:=value`` text (lists in YAML flow style; an empty string as ``''``)."""
    if isinstance(value, str) and value == "":
        return "''"  # dropping it would leave the parameter's default, which is not always empty
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return "[" + ", ".join(str(v) for v in value) + "]"  # an integer array stays one
        return "[" + ", ".join(f"{float(v):.6f}" for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class SimLaunch:
    """The two processes: executables, parameters and remappings.

    Attributes:
        robot_parameters, node_parameters: parameter name -> typed value.
        node_remappings: ``(from, to)`` topic remappings of the node.
    """

    robot_parameters: dict[str, Any]
    node_parameters: dict[str, Any]
    node_remappings: tuple[tuple[str, str], ...] = (("image_raw", "camera/image_raw"),)
    robot_executable: str = "eipl_trt_sim_robot"
    node_executable: str = "eipl_trt_node"
    extra_node_args: tuple[str, ...] = field(default=())

    def robot_command(self, executable: Sequence[str] | None = None) -> list[str]:
        """The robot's command line (``executable`` replaces the console script, e.g. ``python -m``)."""
        params = [a for k, v in self.robot_parameters.items() if v != "" for a in ("-p", f"{k}:={format_value(v)}")]
        return [*(executable or [self.robot_executable]), "--ros-args", *params]

    def node_command(self, executable: Sequence[str] | None = None) -> list[str]:
        """The node's command line."""
        params = [a for k, v in self.node_parameters.items() if v != "" for a in ("-p", f"{k}:={format_value(v)}")]
        params += [a for arg in self.extra_node_args for a in ("-p", arg)]
        remaps = [a for src, dst in self.node_remappings for a in ("-r", f"{src}:={dst}")]
        return [*(executable or [self.node_executable]), "--ros-args", *params, *remaps]


def _int(args: Mapping[str, str], name: str, minimum: int) -> int:
    try:
        value = int(args[name])
    except ValueError:
        raise InputError(f"launch argument {name} must be an integer, got {args[name]!r}") from None
    if value < minimum:
        raise InputError(f"launch argument {name} must be >= {minimum}, got {value}")
    return value


def sim_launch_from_args(args: Mapping[str, str], limits: tuple[Sequence[float], Sequence[float]] | None = None,
                         extra_node_args: Sequence[str] = ()) -> SimLaunch:
    """Map launch arguments (strings; missing or empty = the default) to the two processes.

    Args:
        args: argument name -> value.
        limits: the node's command clamp (lower, upper) in rad; None = the model's bounds.
        extra_node_args: more ``name:=value`` node parameters.

    Raises:
        InputError: an unknown argument or a value the robot or the node would refuse.
    """
    unknown = sorted(set(args) - set(SIM_ARGUMENTS))
    if unknown:
        raise InputError(f"unknown launch argument(s) {unknown}; known: {', '.join(SIM_ARGUMENTS)}")
    a = {**SIM_DEFAULTS, **{k: str(v).strip() for k, v in args.items() if str(v).strip()}}
    if a["clock"] not in ("lockstep", "realtime"):
        raise InputError(f"launch argument clock must be lockstep or realtime, got {a['clock']!r}")
    if a["command_interface"] not in ("forward_position", "joint_trajectory"):
        raise InputError(f"launch argument command_interface must be forward_position or joint_trajectory (the "
                         f"simulated robot's controllers), got {a['command_interface']!r}")
    if a["precision"] not in _PRECISIONS:
        raise InputError(f"launch argument precision must be one of {', '.join(_PRECISIONS)}, got {a['precision']!r}")
    lockstep = a["clock"] == "lockstep"
    robot = {"clock": a["clock"], "episodes": _int(a, "episodes", 0), "first_episode": _int(a, "first_episode", 0),
             "seed": _int(a, "seed", 0), "frames": _int(a, "frames", 2), "reset_service": "/eipl_trt/reset",
             "results": a["results"], "video_episode": _int(a, "first_episode", 0) if a["video_out"] else -1,
             "video_out": a["video_out"]}
    node: dict[str, Any] = {"model": a["model"], "backend": "onnxruntime", "precision": a["precision"],
                            "trigger": "image", "use_sim_time": lockstep,
                            "command_interface": a["command_interface"]}
    if limits is not None:
        node["joint_lower_limits"], node["joint_upper_limits"] = list(limits[0]), list(limits[1])
    return SimLaunch(robot, node, extra_node_args=tuple(extra_node_args))
