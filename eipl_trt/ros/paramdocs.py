"""The reference of the node's parameters, generated from their declarations (no ROS needed).

As ROS's generate_parameter_library does, one table (:data:`eipl_trt.ros.params.PARAMETERS`: names,
types, defaults, allowed values, ranges, descriptions) produces everything that repeats it:

* ``docs/parameters.md``: every parameter and every launch argument;
* ``config/eipl_trt.yaml``: the params file, each key with its description as a comment;
* the ``DeclareLaunchArgument`` calls of ``launch/robot.launch.py`` and the list its
  ``_launch_arguments()`` returns, between its ``BEGIN GENERATED launch arguments`` and
  ``END GENERATED launch arguments`` lines (arguments that override a parameter take its
  description; the others come from :data:`eipl_trt.ros.launch_args.ARGUMENT_DESCRIPTIONS`).

Regenerate after changing a parameter, from the source checkout::

    python -m eipl_trt.ros.paramdocs --write

Without ``--write`` it lists the stale files and exits 1; ``test/test_paramdocs.py`` fails on any
difference between the committed files and what :func:`generate` returns.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any, Sequence

from eipl_trt.common.generated import run_generator
from eipl_trt.ros.launch_args import ARGUMENT_DESCRIPTIONS, LAUNCH_ARGUMENTS, PARAMETER_ARGUMENTS, SWITCH_ARGUMENTS
from eipl_trt.ros.params import PARAMETERS, ParamDef

__all__ = [
    "PARAMETERS_MD",
    "PARAMS_YAML",
    "LAUNCH_FILE",
    "generate",
    "launch_argument_description",
    "launch_arguments_block",
    "main",
    "parameters_markdown",
    "params_yaml",
]

PARAMETERS_MD = Path("docs") / "parameters.md"
PARAMS_YAML = Path("config") / "eipl_trt.yaml"
LAUNCH_FILE = Path("launch") / "robot.launch.py"
COMMAND = "python -m eipl_trt.ros.paramdocs --write"
#: The block's name in the launch file's BEGIN/END GENERATED marker lines.
LAUNCH_BLOCK = "launch arguments"
#: params_file's default in the launch file: the installed config/eipl_trt.yaml.
PARAMS_FILE_DEFAULT = 'PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "eipl_trt.yaml"])'
_BY_NAME = {p.name: p for p in PARAMETERS}


def _yaml_value(value: Any) -> str:
    """A parameter value as YAML reads it back (the params file keeps rclpy's types)."""
    import yaml

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    text = str(value)
    plain = text and text.strip() == text and not any(c in text for c in ":#{}[],&*!|>'\"%@`")
    return text if plain and yaml.safe_load(text) == text else json.dumps(text)


def _range_text(p: ParamDef) -> str:
    if p.range is None:
        return ""
    low, high = (int(v) for v in p.range) if p.type == "integer" else p.range
    return f"{low}..{high}"


def _constraints(p: ParamDef) -> str:
    """``one of: a, b`` or ``range 0.0..1.0`` or ``""``."""
    if p.choices:
        return "one of: " + ", ".join(p.choices)
    if p.range is not None:
        return f"range {_range_text(p)}"
    return ""


def _wrap(text: str, width: int, prefix: str = "") -> list[str]:
    return textwrap.wrap(text, width=width, initial_indent=prefix, subsequent_indent=prefix,
                         break_long_words=False, break_on_hyphens=False)


# ----------------------------------------------------------------------------------- config/eipl_trt.yaml

_YAML_HEADER = f"""\
# Parameters of the eipl_trt node (eipl_trt_node), with their defaults.
#
# GENERATED from the declarations in eipl_trt/ros/params.py by `{COMMAND}`;
# edit those, not this file (test/test_paramdocs.py fails when the two differ). docs/parameters.md
# describes every parameter. Use this file as a template:
#   eipl_trt_node --ros-args --params-file config/eipl_trt.yaml -p model:=/path/to/model_dir
# Keys marked [runtime] can be changed while the node runs (ros2 param set, rqt_reconfigure);
# the others are read-only after start. Units: s, Hz, rad. An empty list [] means "not set".
# use_sim_time (declared by rclpy itself) is not listed: pass it with -p use_sim_time:=true for bag replay.
/**:
  ros__parameters:
"""


def params_yaml() -> str:
    """The text of ``config/eipl_trt.yaml``: a comment per key (description, type, constraints), then the key."""
    lines = [_YAML_HEADER.rstrip("\n")]
    for p in PARAMETERS:
        marker = "[runtime] " if p.dynamic else ""
        lines += _wrap(marker + p.description, 108, "    # ")
        facts = ", ".join(f for f in (p.type, _constraints(p)) if f)
        lines.append(f"    # type: {facts}")
        lines.append(f"    {p.name}: {_yaml_value(p.default)}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------- launch arguments


def launch_argument_default(name: str) -> str:
    """The launch argument's default as launch file code (a string literal, or params_file's substitution)."""
    if name == "params_file":
        return PARAMS_FILE_DEFAULT
    return json.dumps("false" if name in SWITCH_ARGUMENTS else "")


def launch_argument_description(name: str) -> str:
    """The description ``robot.launch.py`` declares for argument ``name``."""
    parameter = PARAMETER_ARGUMENTS.get(name)
    if parameter in _BY_NAME:
        return f"{_BY_NAME[parameter].description} Empty keeps the value from params_file."
    return ARGUMENT_DESCRIPTIONS[name]


def _string_literal(text: str, indent: str, first_width: int, width: int) -> list[str]:
    """``text`` as implicitly concatenated string literals, the first line after ``description=``."""
    chunks = textwrap.wrap(text, width=first_width, break_long_words=False, break_on_hyphens=False)
    if len(chunks) > 1:  # re-wrap the rest at the full width
        rest = " ".join(chunks[1:])
        chunks = chunks[:1] + textwrap.wrap(rest, width=width, break_long_words=False, break_on_hyphens=False)
    if " ".join(chunks) != text:  # whitespace textwrap would not keep: one literal
        chunks = [text]
    literals = [json.dumps(c + (" " if i < len(chunks) - 1 else ""), ensure_ascii=False) for i, c in enumerate(chunks)]
    return [literals[0]] + [indent + lit for lit in literals[1:]]


def launch_arguments_block() -> str:
    """The body of ``robot.launch.py``'s ``_launch_arguments()``: its ``DeclareLaunchArgument`` calls (one
    named variable each), then the list of them it returns."""
    out: list[str] = []
    for name in LAUNCH_ARGUMENTS:
        literal = _string_literal(launch_argument_description(name), " " * 8, 88, 100)
        out += [
            f"    arg_{name} = DeclareLaunchArgument(",
            f"        {json.dumps(name)},",
            f"        default_value={launch_argument_default(name)},",
            f"        description={literal[0]}",
            *literal[1:],
        ]
        out[-1] += ","
        out.append("    )")
    out += ["    return [", *(f"        arg_{name}," for name in LAUNCH_ARGUMENTS), "    ]"]
    return "\n".join(out) + "\n"


def launch_file(current: str) -> str:
    """The launch file's text with its generated block replaced."""
    from eipl_trt.common.generated import replace_block

    return replace_block(current, LAUNCH_BLOCK, launch_arguments_block())


# ----------------------------------------------------------------------------------- docs/parameters.md


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _md_value(p: ParamDef) -> str:
    value = _yaml_value(p.default)
    return f"`{value}`"


def parameters_markdown() -> str:
    """The text of ``docs/parameters.md``."""
    lines = [
        "# Parameters and launch arguments",
        "",
        f"<!-- GENERATED from eipl_trt/ros/params.py and eipl_trt/ros/launch_args.py by `{COMMAND}`; "
        "do not edit (test/test_paramdocs.py fails when this file is stale). -->",
        "",
        "The node `eipl_trt_node` (node name `eipl_trt`) declares these parameters with descriptors: a "
        "description, read-only unless marked *runtime*, and the allowed values or range, which the node "
        "enforces. [`config/eipl_trt.yaml`](../config/eipl_trt.yaml) lists them with their defaults, and "
        "`ros2 param describe /eipl_trt <name>` shows the same text on a running node. Runtime parameters can "
        "be changed while the node runs, e.g. `ros2 param set /eipl_trt precision int8`; the others are read "
        "once at start (a params file or `-p name:=value`). Units: s, Hz, rad. `use_sim_time` is rclpy's own "
        "parameter.",
        "",
        "| parameter | type | default | runtime | allowed values |",
        "|---|---|---|---|---|",
    ]
    for p in PARAMETERS:
        allowed = ", ".join(f"`{c}`" for c in p.choices) if p.choices else (
            f"{_range_text(p)}" if p.range is not None else "")
        lines.append(f"| [`{p.name}`](#{p.name}) | {p.type} | {_md_value(p)} | {'yes' if p.dynamic else ''} | {allowed} |")
    for p in PARAMETERS:
        lines += ["", f"## {p.name}", "", *_wrap(_md(p.description), 100), ""]
        facts = [f"type `{p.type}`", f"default {_md_value(p)}", "runtime" if p.dynamic else "read-only"]
        if p.choices:
            facts.append("one of " + ", ".join(f"`{c}`" for c in p.choices))
        if p.range is not None:
            facts.append(f"range {_range_text(p)} (inclusive)")
        lines.append("- " + "; ".join(facts))
    lines += [
        "",
        "## Launch arguments",
        "",
        "`ros2 launch eipl_trt robot.launch.py name:=value ...` takes these arguments. The ones that "
        "override a node parameter default to the empty string, which means \"keep the value from "
        "`params_file`\"; a value given is passed after the params file, so it wins. "
        "[docs/node.md](node.md) shows the launch file at work.",
        "",
        "| argument | default | overrides | description |",
        "|---|---|---|---|",
    ]
    for name in LAUNCH_ARGUMENTS:
        default = "the installed `config/eipl_trt.yaml`" if name == "params_file" else (
            "`false`" if name in SWITCH_ARGUMENTS else '`""`')
        overrides = PARAMETER_ARGUMENTS.get(name, "")
        target = f"[`{overrides}`](#{overrides})" if overrides in _BY_NAME else (f"`{overrides}`" if overrides else "")
        lines.append(f"| `{name}` | {default} | {target} | {_md(launch_argument_description(name))} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------- all of them


def generate(root: Path) -> dict[Path, str]:
    """Every generated file under the checkout ``root``, as ``{path: text}``.

    Raises:
        FileNotFoundError: ``root`` is not the source checkout (no launch/robot.launch.py).
    """
    launch = root / LAUNCH_FILE
    return {
        root / PARAMETERS_MD: parameters_markdown(),
        root / PARAMS_YAML: params_yaml(),
        launch: launch_file(launch.read_text(encoding="utf-8")),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m eipl_trt.ros.paramdocs [--write] [--diff] [--root DIR]``."""
    return run_generator(generate, argv, prog="eipl_trt.ros.paramdocs", root=Path.cwd(),
                         description="Generate docs/parameters.md, config/eipl_trt.yaml and robot.launch.py's "
                         "launch arguments from eipl_trt/ros/params.py.")


if __name__ == "__main__":
    sys.exit(main())
