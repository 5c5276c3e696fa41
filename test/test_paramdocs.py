"""docs/parameters.md, config/eipl_trt.yaml and robot.launch.py's arguments are generated from the declarations.

The first test regenerates them in memory and fails on any difference with the committed files:
after changing a parameter (or a launch argument's text), run ``python -m eipl_trt.ros.paramdocs --write``.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from eipl_trt.common.generated import differences, replace_block
from eipl_trt.ros import paramdocs
from eipl_trt.ros.launch_args import LAUNCH_ARGUMENTS, PARAMETER_ARGUMENTS
from eipl_trt.ros.params import PARAMETERS, NodeConfig

REPO = Path(__file__).resolve().parents[1]


def test_committed_files_are_what_the_declarations_generate() -> None:
    diffs = differences(paramdocs.generate(REPO))
    assert not diffs, (
        "generated files are stale; run `python -m eipl_trt.ros.paramdocs --write` and commit them:\n"
        + "\n".join(diffs.values()))


def test_every_allowed_value_is_named_in_the_description() -> None:
    """The prose may not drift from the choices (the README once said backend had no `integer`)."""
    for p in PARAMETERS:
        missing = [c for c in p.choices if c not in p.description]
        assert not missing, f"{p.name}: its description does not name {missing}"


def test_params_yaml_reads_back_as_the_defaults_with_a_comment_per_key() -> None:
    text = paramdocs.params_yaml()
    values = yaml.safe_load(text)["/**"]["ros__parameters"]
    assert list(values) == [p.name for p in PARAMETERS]
    assert NodeConfig.from_values(values) == NodeConfig()
    lines = text.splitlines()
    for p in PARAMETERS:
        i = lines.index(f"    {p.name}: {paramdocs._yaml_value(p.default)}")
        assert lines[i - 1].startswith(f"    # type: {p.type}"), p.name
        if p.range is not None:
            assert paramdocs._range_text(p) in lines[i - 1], p.name
        block = []
        for line in reversed(lines[:i - 1]):
            if not line.startswith("    # ") or line.startswith("    # type: "):
                break
            block.insert(0, line[6:])
        assert " ".join(block) == ("[runtime] " if p.dynamic else "") + p.description, p.name


@pytest.mark.parametrize("value, text", [
    ("sarnn", "sarnn"), ("", '""'), ("a: b", '"a: b"'), ("true", '"true"'), ("1", '"1"'), (True, "true"),
    (0.35, "0.35"), (50, "50"), ([], "[]"),
])
def test_yaml_values_keep_their_type(value: object, text: str) -> None:
    assert paramdocs._yaml_value(value) == text
    assert yaml.safe_load(f"k: {text}")["k"] == value


def test_launch_arguments_take_the_parameters_descriptions() -> None:
    tree = ast.parse((REPO / "launch" / "robot.launch.py").read_text(encoding="utf-8"))
    declared = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument":
            keywords = {k.arg: k.value for k in node.keywords}
            declared.append((ast.literal_eval(node.args[0]), ast.literal_eval(keywords["description"])))
    assert [name for name, _ in declared] == list(LAUNCH_ARGUMENTS)
    by_name = {p.name: p for p in PARAMETERS}
    for name, description in declared:
        assert description == paramdocs.launch_argument_description(name)
        if PARAMETER_ARGUMENTS.get(name) in by_name:
            assert description.startswith(by_name[PARAMETER_ARGUMENTS[name]].description)


def test_parameters_md_names_every_parameter_value_range_and_launch_argument() -> None:
    text = paramdocs.parameters_markdown()
    for p in PARAMETERS:
        assert f"\n## {p.name}\n" in text and f"[`{p.name}`](#{p.name})" in text
        assert all(f"`{c}`" in text for c in p.choices)
        if p.range is not None:
            assert f"range {paramdocs._range_text(p)} (inclusive)" in text
    assert all(f"| `{name}` |" in text for name in LAUNCH_ARGUMENTS)


def test_the_command_lists_stale_files_then_writes_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for rel in (paramdocs.PARAMETERS_MD, paramdocs.PARAMS_YAML, paramdocs.LAUNCH_FILE):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, tmp_path / rel)
    (tmp_path / paramdocs.PARAMS_YAML).write_text("# edited by hand\n")
    assert paramdocs.main(["--root", str(tmp_path)]) == 1
    assert f"stale: {tmp_path / paramdocs.PARAMS_YAML}" in capsys.readouterr().out
    assert paramdocs.main(["--root", str(tmp_path), "--write"]) == 0
    assert paramdocs.main(["--root", str(tmp_path)]) == 0
    assert (tmp_path / paramdocs.PARAMS_YAML).read_text() == paramdocs.params_yaml()


def test_replace_block_needs_its_markers_once() -> None:
    text = "a\n# BEGIN GENERATED x\nold\n# END GENERATED x\nb\n"
    assert replace_block(text, "x", "new") == "a\n# BEGIN GENERATED x\nnew\n# END GENERATED x\nb\n"
    with pytest.raises(ValueError, match="BEGIN GENERATED y"):
        replace_block(text, "y", "new")


def test_generator_imports_no_ros() -> None:
    code = ("import sys, eipl_trt.ros.paramdocs\n"
            "assert not [m for m in ('rclpy', 'launch', 'launch_ros') if m in sys.modules]\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_readme_key_parameters_agree_with_the_declarations() -> None:
    """The README's short table is hand-written: its names, defaults and runtime marks must be the declared ones."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("| parameter | default | runtime | what it sets |")
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    by_name = {p.name: p for p in PARAMETERS}
    assert len(rows) >= 10
    for names, default, runtime, what in rows:
        for name in [n.strip().strip("`") for n in names.split(",")]:
            p = by_name[name]
            assert default == f"`{paramdocs._yaml_value(p.default)}`", name
            assert (runtime == "yes") == p.dynamic, name
            assert all(f"`{c}`" in what for c in p.choices), f"{name}: README lists other values than {p.choices}"
