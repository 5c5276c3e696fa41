"""How ``robot.launch.py``'s arguments become the eipl_trt node's command line (pure Python).

The launch file reads its arguments as strings and hands them to :func:`node_launch_from_args`;
the resulting :class:`NodeLaunch` is what it gives ``launch_ros.actions.Node``. Tests call the
same function and run :meth:`NodeLaunch.command`, the command line launch_ros builds from it, so
the mapping is exercised on machines without launch.

Defaults live in one place (the node's parameter declarations, repeated in
``config/eipl_trt.yaml``): an empty launch argument means "do not override", so nothing is
passed for it and the YAML/node default applies. Overrides go after the params file (launch_ros
writes them to a second params file; the last file wins).

The launch file's ``DeclareLaunchArgument`` calls are generated (``python -m eipl_trt.ros.paramdocs
--write``) from :data:`LAUNCH_ARGUMENTS`: an argument that overrides a node parameter takes that
parameter's description, the others take theirs from :data:`ARGUMENT_DESCRIPTIONS`.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from eipl_trt.errors import InputError

__all__ = [
    "ARGUMENT_DESCRIPTIONS",
    "EXECUTABLE",
    "LAUNCH_ARGUMENTS",
    "PACKAGE",
    "SWITCH_ARGUMENTS",
    "PARAMETER_ARGUMENTS",
    "TOPIC_ARGUMENTS",
    "NODE_ARGUMENTS",
    "NodeLaunch",
    "default_params_file",
    "node_launch_from_args",
    "node_launches_from_args",
    "parse_bool",
    "write_overrides_file",
]

PACKAGE = "eipl_trt"
#: The node's console script (``setup.py`` entry point).
EXECUTABLE = "eipl_trt_node"
#: Launch argument -> node parameter it overrides when non-empty.
PARAMETER_ARGUMENTS: dict[str, str] = {
    "model": "model",
    "backend": "backend",
    "precision": "precision",
    "command_interface": "command_interface",
    "image_transport": "image_transport",
    "use_sim_time": "use_sim_time",
}
#: Launch argument -> the node's relative input topic it remaps when non-empty. ``image_topic`` also
#: remaps ``image_raw/compressed`` to ``<image_topic>/compressed`` (image_transport's naming), the
#: topic the node reads with ``image_transport: compressed``.
TOPIC_ARGUMENTS: dict[str, str] = {"image_topic": "image_raw", "joint_states_topic": "joint_states"}
#: Every launch argument that shapes the node (the launch file also has ``rqt`` and ``aggregator``).
NODE_ARGUMENTS: tuple[str, ...] = (*PARAMETER_ARGUMENTS, *TOPIC_ARGUMENTS, "namespace", "params_file", "models")
#: Launch arguments that start an extra tool when true (default "false").
SWITCH_ARGUMENTS: tuple[str, ...] = ("rqt", "aggregator")
#: Every argument of ``robot.launch.py``, in the order it declares them.
LAUNCH_ARGUMENTS: tuple[str, ...] = (
    "model", "models", "backend", "precision", "namespace", "image_topic", "image_transport", "joint_states_topic",
    "command_interface", "use_sim_time", "params_file", *SWITCH_ARGUMENTS,
)
#: Descriptions of the launch arguments that do not override one of the node's own parameters (those
#: take the parameter's description, followed by "Empty keeps the value from params_file.").
ARGUMENT_DESCRIPTIONS: dict[str, str] = {
    "models": "Several models side by side, comma separated (e.g. sarnn,cnnrnn): one node per model in "
              "namespace/<model>, all reading the same camera and joint states. Empty starts the one model of model.",
    "namespace": "Namespace for the node and its topics (e.g. left_arm). Empty starts it without a namespace; "
                 "note that the rqt perspective shows the topics of the node without a namespace.",
    "image_topic": "Camera topic (sensor_msgs/Image) remapped to the node's image_raw input, and its /compressed "
                   "sibling to image_raw/compressed. Empty keeps image_raw, resolved in the node's namespace.",
    "joint_states_topic": "Joint state topic (sensor_msgs/JointState) remapped to the node's joint_states input. "
                          "Empty keeps joint_states, resolved in the node's namespace.",
    "use_sim_time": "Set to true to follow /clock (rosbag replay or simulation), false to use wall time. "
                    "Empty keeps the node default (false).",
    "params_file": "YAML parameter file of the node; the other arguments override its values when given. "
                   "Defaults to the installed config/eipl_trt.yaml.",
    "rqt": "Set to true to open rqt with the eipl_trt perspective (robot monitor, timing plot, attention image, "
           "parameters).",
    "aggregator": "Set to true to start diagnostic_aggregator with config/diagnostic_analyzers.yaml, so "
                  "rqt_robot_monitor shows the node's diagnostics under eipl_trt.",
}

_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_NAME_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOPIC_TOKEN = re.compile(r"^[A-Za-z_~{}][A-Za-z0-9_{}]*$")


@dataclass(frozen=True)
class NodeLaunch:
    """Everything launch_ros needs to start the node, already validated.

    Attributes:
        params_file: the node's YAML parameter file (absolute path).
        overrides: node parameter -> typed value (str or bool), only for non-empty launch args.
        remappings: ``(from, to)`` topic remappings, e.g. ``("image_raw", "/camera/image_raw")``.
        namespace: absolute namespace (``/robot``), or ``""`` for none.
        executable: the console script.
    """

    params_file: str
    overrides: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    namespace: str = ""
    executable: str = EXECUTABLE

    def ros_arguments(self, overrides_file: str | os.PathLike[str] | None = None) -> list[str]:
        """The ``--ros-args ...`` part launch_ros appends, in its order.

        Args:
            overrides_file: the file :func:`write_overrides_file` wrote for :attr:`overrides`
                (launch_ros writes the same file for a parameter dict). Required if there are
                overrides.
        """
        args = ["--ros-args"]
        if self.namespace:
            args += ["-r", f"__ns:={self.namespace}"]
        args += ["--params-file", self.params_file]
        if self.overrides:
            if overrides_file is None:
                raise InputError("this launch has parameter overrides; pass the file write_overrides_file() wrote")
            args += ["--params-file", os.fspath(overrides_file)]
        for source, target in self.remappings:
            args += ["-r", f"{source}:={target}"]
        return args

    def command(
        self, overrides_file: str | os.PathLike[str] | None = None, *, executable: str | None = None
    ) -> list[str]:
        """The full command line: the executable (default :attr:`executable`) and its ROS arguments."""
        return [executable or self.executable, *self.ros_arguments(overrides_file)]


def parse_bool(text: str, name: str) -> bool:
    """A launch-style boolean (true/false, 1/0, yes/no; any case).

    Raises:
        InputError: anything else; the message names the argument.
    """
    try:
        return _BOOL_WORDS[text.strip().lower()]
    except KeyError:
        raise InputError(f"launch argument {name} must be true or false, got {text!r}") from None


def default_params_file() -> str:
    """The installed ``share/eipl_trt/config/eipl_trt.yaml`` (or the source checkout's)."""
    from eipl_trt.paths import share_dir

    return str(share_dir() / "config" / "eipl_trt.yaml")


def _namespace(text: str) -> str:
    text = text.strip().strip("/")
    if not text:
        return ""
    parts = text.split("/")
    bad = [p for p in parts if not _NAME_TOKEN.match(p)]
    if bad:
        raise InputError(
            f"launch argument namespace {text!r} is not a valid ROS namespace (tokens must start with a "
            f"letter or underscore and contain only letters, digits and underscores)"
        )
    return "/" + "/".join(parts)


def _topic(text: str, name: str) -> str:
    topic = text.strip()
    tokens = topic.lstrip("/").split("/") if topic else [""]
    if any(not _TOPIC_TOKEN.match(token) for token in tokens) or topic.endswith("/"):
        raise InputError(f"launch argument {name} {text!r} is not a valid ROS topic name")
    return topic


def _choices(parameter: str) -> tuple[str, ...]:
    from eipl_trt.ros.params import PARAMETERS

    for p in PARAMETERS:
        if p.name == parameter:
            return p.choices
    return ()


def node_launch_from_args(
    args: Mapping[str, str], *, params_file_default: str | os.PathLike[str] | None = None
) -> NodeLaunch:
    """Map the launch arguments (strings, as launch performs them) to a :class:`NodeLaunch`.

    Args:
        args: launch argument name -> value; missing or empty (after strip) = not overridden.
        params_file_default: params file when ``params_file`` is empty; None = the installed one.

    Raises:
        InputError: an unknown argument, a value the node would reject (backend, precision,
            command_interface outside their choices), a bad boolean, topic or namespace, or a
            params file that does not exist.
    """
    unknown = sorted(set(args) - set(NODE_ARGUMENTS) - {"rqt", "aggregator"})
    if unknown:
        raise InputError(f"unknown launch argument(s) {unknown}; known: {', '.join(NODE_ARGUMENTS)}, rqt, aggregator")
    given = {name: str(value).strip() for name, value in args.items() if str(value).strip()}
    if "models" in given:
        raise InputError("launch argument models starts several nodes; map it with node_launches_from_args()")
    overrides: dict[str, Any] = {}
    for arg, parameter in PARAMETER_ARGUMENTS.items():
        if arg not in given:
            continue
        if parameter == "use_sim_time":
            overrides[parameter] = parse_bool(given[arg], arg)
            continue
        choices = _choices(parameter)
        if choices and given[arg] not in choices:
            raise InputError(f"launch argument {arg} must be one of {', '.join(choices)}, got {given[arg]!r}")
        overrides[parameter] = given[arg]
    remappings = tuple((source, _topic(given[arg], arg)) for arg, source in TOPIC_ARGUMENTS.items() if arg in given)
    if "image_topic" in given:
        remappings = (*remappings, ("image_raw/compressed", f"{_topic(given['image_topic'], 'image_topic')}/compressed"))
    namespace = _namespace(given.get("namespace", ""))
    params_file = given.get("params_file") or os.fspath(params_file_default or default_params_file())
    params_path = Path(params_file).expanduser()
    if not params_path.is_file():
        raise InputError(f"params_file {params_file!r} does not exist; pass an existing YAML parameter file")
    return NodeLaunch(
        params_file=str(params_path.resolve()),
        overrides=overrides,
        remappings=remappings,
        namespace=namespace,
    )


def write_overrides_file(overrides: Mapping[str, Any], directory: str | os.PathLike[str] | None = None) -> Path:
    """Write ``overrides`` as a wildcard params file, as launch_ros does for a parameter dict.

    The layout is ``{'/**': {'ros__parameters': overrides}}`` dumped with PyYAML (strings that
    look like numbers or booleans come out quoted, so the node receives them as strings).

    Returns:
        The new file (``launch_params_*`` in ``directory``, default the system temp dir).
    """
    fd, name = tempfile.mkstemp(prefix="launch_params_", suffix=".yaml", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.dump({"/**": {"ros__parameters": dict(overrides)}}, handle, default_flow_style=False)
    return Path(name)


def _model_token(model: str) -> str:
    """The namespace token of one entry of ``models:=`` (a bundled name or a model directory's name)."""
    path = Path(model)
    name = path.parent.name if path.suffix in (".json", ".onnx") else path.name
    token = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not token or not _NAME_TOKEN.match(token):
        token = f"m_{token}"
    return token


def _shared(topic: str, namespace: str) -> str:
    """A topic every model's node reads: absolute, in the launch namespace (not the model's)."""
    return topic if topic.startswith(("/", "~")) else f"{namespace}/{topic}"


def node_launches_from_args(
    args: Mapping[str, str], *, params_file_default: str | os.PathLike[str] | None = None
) -> list[NodeLaunch]:
    """Map the launch arguments to one :class:`NodeLaunch` per model.

    Without ``models`` this is ``[node_launch_from_args(args)]``. With ``models:=sarnn,cnnrnn`` (comma
    separated bundled names or model directories) each model gets its own node in the namespace
    ``<namespace>/<model>`` (``/sarnn``, ``/cnnrnn``; a directory's name for a path), publishing its
    predictions there. All of them read the same camera and joint states: ``image_raw`` and
    ``joint_states`` (or the given ``image_topic``/``joint_states_topic``, relative ones resolved in
    ``<namespace>``) are remapped to absolute topics, so one camera feeds every model. Each node is
    its own process (a crash or a slow step of one model does not stall the others, and their numpy
    pre/postprocessing does not share one interpreter lock).

    Raises:
        InputError: everything :func:`node_launch_from_args` refuses; ``model`` and ``models``
            together; an empty or repeated entry; ``command_interface`` other than ``none`` with
            several models (only one node may command the robot: start it with its own launch).
    """
    given = {name: str(value).strip() for name, value in args.items() if str(value).strip()}
    if "models" not in given:
        return [node_launch_from_args(args, params_file_default=params_file_default)]
    if "model" in given:
        raise InputError("give either model:= (one node) or models:= (one node per model), not both")
    models = [m.strip() for m in given["models"].split(",")]
    if any(not m for m in models):
        raise InputError(f"launch argument models {given['models']!r} has an empty entry; write e.g. models:=sarnn,cnnrnn")
    tokens = [_model_token(m) for m in models]
    repeated = sorted({t for t in tokens if tokens.count(t) > 1})
    if repeated:
        raise InputError(f"launch argument models names {', '.join(repeated)} twice; each model needs its own namespace")
    if len(models) > 1 and given.get("command_interface", "none") != "none":
        raise InputError(
            f"command_interface {given['command_interface']!r} with {len(models)} models: only one node may command "
            f"the robot; start the commanding model with its own launch (model:=...) and the others with models:=")
    base = _namespace(given.get("namespace", ""))
    image = _topic(given.get("image_topic", "image_raw"), "image_topic")
    joints = _topic(given.get("joint_states_topic", "joint_states"), "joint_states_topic")
    plans = []
    for model, token in zip(models, tokens):
        one = {k: v for k, v in given.items() if k != "models"}
        one.update(model=model, namespace=f"{base}/{token}", image_topic=_shared(image, base),
                   joint_states_topic=_shared(joints, base))
        plans.append(node_launch_from_args(one, params_file_default=params_file_default))
    return plans
