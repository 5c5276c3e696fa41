"""The node's parameters: one table of declarations, and the frozen :class:`NodeConfig` read from them.

:data:`PARAMETERS` is the single source of names, types, defaults, descriptions, ranges and
whether a parameter may change at runtime. ``config/eipl_trt.yaml``, ``docs/parameters.md`` and
the DeclareLaunchArgument calls of ``launch/robot.launch.py`` are generated from it
(``python -m eipl_trt.ros.paramdocs --write``; ``test/test_paramdocs.py`` fails when they are
stale). rclpy is imported only inside :func:`declare_parameters` and :func:`read_values`, so the
table and :class:`NodeConfig` work without ROS.

Parameters that can change while the node runs (``dynamic``): ``precision`` (the runner is
swapped at a step boundary, keeping the LSTM state), ``max_input_age``, ``max_step``,
``joint_lower_limits``, ``joint_upper_limits`` and ``input_mix``. All others are read-only:
set them at start (params file or ``-p``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from eipl_trt.control import SafetyConfig
from eipl_trt.errors import InputError
from eipl_trt.paths import DEFAULT_MODEL
from eipl_trt.ros.trajectory import TRAJECTORY_TIMINGS
from eipl_trt.runners import BACKENDS
from eipl_trt.spec import PRECISIONS, ModelSpec

__all__ = [
    "ParamDef",
    "PARAMETERS",
    "DYNAMIC",
    "TRIGGERS",
    "TIMER_PHASES",
    "IMAGE_TRANSPORTS",
    "COMMAND_INTERFACES",
    "DEFAULT_COMMAND_TOPICS",
    "NodeConfig",
    "declare_parameters",
    "read_values",
]

TRIGGERS = ("timer", "image")
#: ``timer_phase`` values: lock the step timer to the camera, or leave it free running.
TIMER_PHASES = ("camera", "free")
#: ``raw``: sensor_msgs/Image on ``image_raw``; ``compressed``: sensor_msgs/CompressedImage on ``image_raw/compressed``.
IMAGE_TRANSPORTS = ("raw", "compressed")
COMMAND_INTERFACES = ("none", "joint_state", "forward_position", "joint_trajectory")
#: Command topic used when ``command_topic`` is empty, per interface (relative names; remappable).
DEFAULT_COMMAND_TOPICS = {
    "joint_state": "~/joint_commands",
    "forward_position": "forward_position_controller/commands",
    "joint_trajectory": "joint_trajectory_controller/joint_trajectory",
}


@dataclass(frozen=True)
class ParamDef:
    """One parameter declaration.

    Attributes:
        name: parameter name.
        type: ``bool``, ``integer``, ``double``, ``string``, ``string_array`` or ``double_array``.
        default: default value (an empty list for arrays = "not set": the parameter is declared
            statically typed without a value, because rclpy would type ``[]`` as a byte array).
        description: one or two sentences with units.
        dynamic: may be changed at runtime (otherwise read-only).
        range: ``(from, to)`` inclusive bounds for numbers.
        choices: allowed values for strings.
    """

    name: str
    type: str
    default: Any
    description: str
    dynamic: bool = False
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] = ()


PARAMETERS: tuple[ParamDef, ...] = (
    ParamDef("model", "string", DEFAULT_MODEL,
             "Bundled model name (e.g. sarnn) or a model directory, model.json or model.onnx written by "
             "`eipl-trt export`."),
    ParamDef("backend", "string", "auto",
             "Inference backend: auto (TensorRT if usable, else the fastest CPU backend at parity: ONNX Runtime "
             "or OpenVINO; see docs/backends.md), onnxruntime, openvino, tensorrt, or integer (the quantization "
             "lab's integer-only model in <model dir>/intonly, precision int8; numpy, slow).",
             choices=BACKENDS),
    ParamDef("precision", "string", "fp32",
             "Model precision: fp32, fp16, int8 (the model's variants), or bf16 (the fp32 file with bfloat16 "
             "arithmetic, on CPUs that have it). Switchable at runtime: the new runner is prepared "
             "in the background and swapped in at a step boundary with the LSTM state handed over; an "
             "unavailable precision is refused.", dynamic=True, choices=PRECISIONS),
    ParamDef("num_threads", "integer", 1,
             "Threads of the CPU backends: ONNX Runtime's intra-op threads, OpenVINO's INFERENCE_NUM_THREADS. "
             "TensorRT and the integer backend do not use it.", range=(1, 64)),
    ParamDef("engine_cache_dir", "string", "",
             "TensorRT engine cache directory; empty = $EIPL_TRT_ENGINE_CACHE, else "
             "$XDG_CACHE_HOME/eipl_trt/engines. Engines are built there on first use (minutes on a Jetson) "
             "and reused while the ONNX file, TensorRT version, GPU and options stay the same."),
    ParamDef("cuda_graphs", "bool", True,
             "TensorRT: replay each step as a CUDA graph (one per LSTM state buffer set); false = plain "
             "enqueue. An engine that refuses capture falls back to plain enqueue by itself."),
    ParamDef("thread_priority", "integer", 50,
             "SCHED_FIFO priority (1..98) of the model's step thread, as ros2_control's thread_priority (same "
             "default): the step then pre-empts DDS threads and other processes on a loaded machine. Needs rtprio "
             "for the user (e.g. `@realtime - rtprio 98` in /etc/security/limits.conf); without it the node warns "
             "once and runs the thread at normal priority. 0 = normal scheduling.", range=(0, 98)),
    ParamDef("rate_hz", "double", 0.0,
             "Control rate in Hz (one model step per period, on the ROS clock); 0 = the model's training "
             "rate from model.json.", range=(0.0, 1000.0)),
    ParamDef("trigger", "string", "timer",
             "timer: step at rate_hz with the latest image and joint state; image: step once per new image "
             "(offline replay parity).", choices=TRIGGERS),
    ParamDef("timer_phase", "string", "camera",
             "Timer trigger: camera = when the camera runs at 1-4 frames per control period (within 0.1 frame), "
             "restart the step timer once so its ticks fall when the frames arrive, and wait for a frame that "
             "is due within a quarter camera period; the command then follows the newest image by a step, "
             "not by up to a camera period, and the ticks stay periodic (re-locked when the clocks drift "
             "apart). free = the timer keeps the phase it started with (max_frame_wait applies). Not used with "
             "use_sim_time or the image trigger.", choices=TIMER_PHASES),
    ParamDef("max_frame_wait", "double", 0.0,
             "Timer trigger: after a tick, wait at most this many seconds for the camera frame that is due "
             "(from the measured camera rate) and step on it rather than on an older one, so the command "
             "follows the newest image by a step instead of by up to a camera period; the tick period is "
             "unchanged, the step moves by a nearly constant phase. -1 = half the control period, 0 = step at "
             "the tick (default; opt in, see docs/node.md). Used with timer_phase free or a camera "
             "the timer does not lock to; not used with use_sim_time or the image trigger.",
             range=(-1.0, 10.0)),
    ParamDef("image_transport", "string", "raw",
             "Camera transport: raw = sensor_msgs/Image on image_raw; compressed = sensor_msgs/CompressedImage "
             "(JPEG or PNG, as compressed_image_transport publishes it) on image_raw/compressed, decoded with OpenCV "
             "(pip install eipl_trt[camera]). Remap the topic the transport uses, e.g. "
             "-r image_raw/compressed:=/camera/image_raw/compressed.", choices=IMAGE_TRANSPORTS),
    ParamDef("max_input_age", "double", 0.5,
             "Inputs (image or any model joint) older than this many seconds (ROS time since receipt) stop "
             "the model steps and commands; 0 = no age check.", dynamic=True, range=(0.0, 3600.0)),
    ParamDef("joint_names", "string_array", [],
             "Names of the model joints in model order, as they appear in joint_states; empty = the names "
             "in model.json."),
    ParamDef("joint_lower_limits", "double_array", [],
             "Lower command limits in rad, one per model joint; empty = the model's joint bounds (the range "
             "seen in the training data).", dynamic=True),
    ParamDef("joint_upper_limits", "double_array", [],
             "Upper command limits in rad, one per model joint; empty = the model's joint bounds.",
             dynamic=True),
    ParamDef("max_step", "double", 0.35,
             "Largest change of any joint command per step in rad (relative to the last command, or the "
             "measured position for the first); 0 = unlimited. 0.35 rad = EIPL's 20 degree jump guard.",
             dynamic=True, range=(0.0, 10.0)),
    ParamDef("input_mix", "double", 1.0,
             "Closed-loop mixing alpha in [0, 1]: joint input = alpha * measured + (1 - alpha) * previous "
             "prediction (normalized).", dynamic=True, range=(0.0, 1.0)),
    ParamDef("command_interface", "string", "none",
             "Robot command output: none, joint_state (sensor_msgs/JointState), forward_position "
             "(std_msgs/Float64MultiArray for a forward_command_controller) or joint_trajectory "
             "(trajectory_msgs/JointTrajectory, one point at 1/rate). Commands are clamped to the joint limits, "
             "rate-limited by max_step and stopped when inputs are stale or outputs not finite.",
             choices=COMMAND_INTERFACES),
    ParamDef("trajectory_timing", "string", "stamp",
             "joint_trajectory: how the point is anchored in time. stamp = header.stamp is the input frame's stamp "
             "and the point is due 1/rate later, as the model predicts (the controller absorbs the camera, step and "
             "DDS delay; at least 0.2/rate of ramp is kept); frame = the same due time counted from receipt "
             "(header stamp zero); period = 1/rate after receipt, for controllers that ignore stamps. Use stamp "
             "with trigger image.",
             choices=TRAJECTORY_TIMINGS),
    ParamDef("trajectory_coast", "bool", True,
             "joint_trajectory: add a second point one period after the first that continues the step's motion "
             "(clamped to the limits), so a command that lands late finds the arm still moving; the next command "
             "replaces it. If commands stop, the arm coasts at most one max_step to it and holds."),
    ParamDef("command_topic", "string", "",
             "Topic for commands; empty = the interface default (~/joint_commands, "
             "forward_position_controller/commands, joint_trajectory_controller/joint_trajectory)."),
    ParamDef("power_source", "string", "auto",
             "Power measurement for diagnostics and ~/timing: auto (INA3221 sysfs, jtop, NVML, first that "
             "works), none, or one of ina3221, jtop, nvml. Without a source, diagnostics say \"no power source\".",
             choices=("auto", "none", "ina3221", "jtop", "nvml")),
    ParamDef("autostart", "bool", True,
             "Configure and activate on start, so a plain launch just works; false = wait for lifecycle "
             "transitions."),
)

_BY_NAME = {p.name: p for p in PARAMETERS}
DYNAMIC = frozenset(p.name for p in PARAMETERS if p.dynamic)


@dataclass(frozen=True)
class NodeConfig:
    """Validated parameter values; replaced as a whole when a dynamic parameter changes.

    Field meanings and units are those of :data:`PARAMETERS` (s, Hz, rad).
    """

    model: str = DEFAULT_MODEL
    backend: str = "auto"
    precision: str = "fp32"
    num_threads: int = 1
    engine_cache_dir: str = ""
    cuda_graphs: bool = True
    thread_priority: int = 50
    rate_hz: float = 0.0
    trigger: str = "timer"
    timer_phase: str = "camera"
    max_frame_wait: float = 0.0
    image_transport: str = "raw"
    max_input_age: float = 0.5
    joint_names: tuple[str, ...] = ()
    joint_lower_limits: tuple[float, ...] = ()
    joint_upper_limits: tuple[float, ...] = ()
    max_step: float = 0.35
    input_mix: float = 1.0
    command_interface: str = "none"
    trajectory_timing: str = "stamp"
    trajectory_coast: bool = True
    command_topic: str = ""
    power_source: str = "auto"
    autostart: bool = True

    def __post_init__(self) -> None:
        for p in PARAMETERS:
            value = getattr(self, p.name)
            if p.choices and value not in p.choices:
                raise InputError(f"parameter {p.name} must be one of {', '.join(p.choices)}, got {value!r}")
            if p.range is not None and not (p.range[0] <= value <= p.range[1]):
                raise InputError(f"parameter {p.name} must be in [{p.range[0]}, {p.range[1]}], got {value}")
            if p.type == "double_array" and any(math.isnan(v) for v in value):
                raise InputError(f"parameter {p.name} must not contain NaN (use .inf for 'no limit')")
        if not self.model:
            raise InputError("parameter model is empty; give a bundled model name or a model directory")
        if len(set(self.joint_names)) != len(self.joint_names):
            raise InputError(f"parameter joint_names has duplicates: {list(self.joint_names)}")

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> "NodeConfig":
        """Build from a ``name -> value`` mapping (missing names take their defaults).

        Raises:
            InputError: an unknown name, a value of the wrong type, or a value out of range.
        """
        unknown = set(values) - set(_BY_NAME)
        if unknown:
            raise InputError(f"unknown parameter(s) {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        for name, value in values.items():
            kwargs[name] = _coerce(_BY_NAME[name], value)
        return cls(**kwargs)

    def replace(self, values: Mapping[str, Any]) -> "NodeConfig":
        """A copy with some values changed (validated like :meth:`from_values`)."""
        current = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        current.update(values)
        return NodeConfig.from_values(current)

    def command_topic_name(self) -> str:
        """The command topic in use (``command_topic`` or the interface default; ``""`` for none)."""
        if self.command_interface == "none":
            return ""
        return self.command_topic or DEFAULT_COMMAND_TOPICS[self.command_interface]

    def safety_config(self, spec: ModelSpec, joint_names: tuple[str, ...]) -> SafetyConfig:
        """The command limits (empty joint limits = the model's joint bounds, the training data's range)."""
        return SafetyConfig.from_limits(
            joint_names, self.joint_lower_limits, self.joint_upper_limits,
            default_lower=spec.joint_min, default_upper=spec.joint_max,
            max_step=self.max_step, max_input_age=self.max_input_age,
        )

    def frame_wait_limit(self, period_s: float) -> float:
        """The longest wait for a due frame after a tick (s): ``max_frame_wait``, -1 = half ``period_s``."""
        return 0.5 * period_s if self.max_frame_wait < 0 else self.max_frame_wait

    def runner_options(self) -> dict[str, Any]:
        """Backend options for :func:`eipl_trt.runners.create_runner` (TensorRT's; others ignore them)."""
        return {"cuda_graphs": self.cuda_graphs, "cache_dir": self.engine_cache_dir or None}


def _coerce(p: ParamDef, value: Any) -> Any:
    """Convert one raw parameter value (None = unset array) to the NodeConfig field type."""
    casts: dict[str, Callable[[Any], Any]] = {
        "bool": bool, "integer": int, "double": float, "string": str,
        "string_array": lambda v: tuple(str(x) for x in v),
        "double_array": lambda v: tuple(float(x) for x in v),
    }
    if value is None and p.type.endswith("_array"):
        return ()
    if p.type == "bool" and not isinstance(value, bool):
        raise InputError(f"parameter {p.name} must be true or false, got {value!r}")
    if p.type in ("integer", "double") and isinstance(value, (bool, str)):
        raise InputError(f"parameter {p.name} must be a number, got {value!r}")
    if p.type.endswith("_array") and isinstance(value, str):
        raise InputError(f"parameter {p.name} must be a list, got the string {value!r}")
    try:
        return casts[p.type](value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"parameter {p.name} must be a {p.type}, got {value!r}") from exc


def declare_parameters(node: Any) -> None:
    """Declare every parameter of :data:`PARAMETERS` on an rclpy node, each with a ParameterDescriptor."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.parameter import Parameter

    types = {
        "bool": Parameter.Type.BOOL, "integer": Parameter.Type.INTEGER, "double": Parameter.Type.DOUBLE,
        "string": Parameter.Type.STRING, "string_array": Parameter.Type.STRING_ARRAY,
        "double_array": Parameter.Type.DOUBLE_ARRAY,
    }
    for p in PARAMETERS:
        descriptor = ParameterDescriptor(description=p.description, read_only=not p.dynamic)
        if p.choices:
            descriptor.additional_constraints = "one of: " + ", ".join(p.choices)
        if p.range is not None and p.type == "double":
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(p.range[0]), to_value=float(p.range[1]))]
        if p.range is not None and p.type == "integer":
            descriptor.integer_range = [IntegerRange(from_value=int(p.range[0]), to_value=int(p.range[1]), step=1)]
        default = types[p.type] if p.type.endswith("_array") and not p.default else p.default
        node.declare_parameter(p.name, default, descriptor)


def read_values(node: Any, names: Sequence[str] | None = None) -> dict[str, Any]:
    """Current values of the named (default: all) parameters; an unset array reads as ``None``."""
    import rclpy.exceptions

    uninitialized = getattr(rclpy.exceptions, "ParameterUninitializedException", LookupError)
    values: dict[str, Any] = {}
    for name in names if names is not None else [p.name for p in PARAMETERS]:
        try:
            values[name] = node.get_parameter(name).value
        except uninitialized:
            values[name] = None
    return values
