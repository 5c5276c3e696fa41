"""docs/cli.md is generated from the live `eipl-trt` parsers: every subcommand, flag and help text.

The first test regenerates it in memory and fails on any difference with the committed page: after
changing a flag or a subcommand, run ``python -m eipl_trt.cli.clidocs --write``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from eipl_trt.cli import SUBCOMMANDS, build_parser
from eipl_trt.cli import clidocs
from eipl_trt.common.generated import differences

REPO = Path(__file__).resolve().parents[1]


def test_committed_cli_md_is_what_the_parsers_generate() -> None:
    diffs = differences(clidocs.generate(REPO))
    assert not diffs, (
        "docs/cli.md is stale; run `python -m eipl_trt.cli.clidocs --write` and commit it:\n"
        + "\n".join(diffs.values()))


def _walk(parser: argparse.ArgumentParser, prog: str):  # noqa: ANN202
    yield prog, parser
    for name, _help, sub in clidocs._subcommands(parser):
        yield from _walk(sub, f"{prog} {name}")


def test_every_subcommand_and_flag_is_on_the_page() -> None:
    text = clidocs.cli_markdown()
    parsers = dict(_walk(build_parser(), "eipl-trt"))
    assert {f"eipl-trt {name}" for name in SUBCOMMANDS} <= set(parsers)
    for prog, parser in parsers.items():
        if prog != "eipl-trt":
            assert f"\n{'#' * (prog.count(' ') + 1)} {prog}\n" in text, prog
        for action in clidocs._visible(parser):
            if action.option_strings:
                assert max(action.option_strings, key=len) in text, (prog, action.option_strings)
            if action.help and "%" not in action.help and not isinstance(action, argparse._SubParsersAction):
                assert clidocs._cell(" ".join(action.help.split())) in text, (prog, action.dest)


def test_help_fields_are_filled_in_as_help_shows_them() -> None:
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--rate", type=float, default=10.0, help="rate in Hz (default %(default)s)")
    parser.add_argument("--mode", choices=("a", "b"), default="a", help="one of %(choices)s")
    parser.add_argument("--bag", nargs="+", required=True, help="bags | in order")
    parser.add_argument("--flag", action="store_true", help="a switch")
    parser.add_argument("src", nargs="*", help="sources")
    text = clidocs.cli_markdown(parser)
    assert "| `--rate RATE` | rate in Hz (default 10.0) |" in text
    assert "| `--mode {a,b}` | one of a, b |" in text
    assert "| `--bag BAG [BAG ...]` (required) | bags \\| in order |" in text
    assert "| `--flag` | a switch |" in text and "| `src` | sources |" in text
    assert "tool [--rate RATE] [--mode {a,b}] --bag BAG [BAG ...] [--flag] [src ...]" in text


@pytest.mark.parametrize("argv", [["--root", "{tmp}"], ["--root", "{tmp}", "--write"]])
def test_the_command_writes_into_the_given_checkout(tmp_path: Path, argv: list[str]) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = clidocs.main(args)
    assert code == (0 if "--write" in args else 1)
    assert (tmp_path / "docs" / "cli.md").is_file() == ("--write" in args)
    if "--write" in args:
        assert clidocs.main(["--root", str(tmp_path)]) == 0
