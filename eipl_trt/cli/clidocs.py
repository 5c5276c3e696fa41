"""``docs/cli.md``, generated from the ``eipl-trt`` argparse parsers.

Every subcommand (and sub-subcommand, such as ``eipl-trt dataset recode``) with its description,
a usage line and a table of its flags with their help, read from the parsers
:func:`eipl_trt.cli.build_parser` builds, so the page cannot drift from ``--help``. The text is
composed here rather than taken from argparse's own formatter, whose wrapping differs between
Python versions and terminal widths. Regenerate after changing a flag, from the source checkout::

    python -m eipl_trt.cli.clidocs --write

``test/test_clidocs.py`` fails when the committed page differs from what :func:`cli_markdown` returns.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import textwrap
from pathlib import Path
from typing import Iterator, Sequence

from eipl_trt.common.generated import run_generator

__all__ = ["CLI_MD", "cli_markdown", "generate", "main"]

CLI_MD = Path("docs") / "cli.md"
COMMAND = "python -m eipl_trt.cli.clidocs --write"
_WIDTH = 100


def _metavar(action: argparse.Action) -> str | tuple[str, ...]:
    if action.metavar is not None:
        return action.metavar
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    return action.dest if not action.option_strings else action.dest.upper()


def _arguments(action: argparse.Action) -> str:
    """What follows the flag: ``OUT``, ``BAG [BAG ...]``, ``[X]``; "" for a switch."""
    if action.nargs == 0:
        return ""
    metavar = _metavar(action)
    names = list(metavar) if isinstance(metavar, tuple) else None
    one = names[0] if names else str(metavar)
    if action.nargs is None:
        return one
    if action.nargs == argparse.OPTIONAL:
        return f"[{one}]"
    if action.nargs == argparse.ZERO_OR_MORE:
        return f"[{one} ...]"
    if action.nargs == argparse.ONE_OR_MORE:
        return f"{one} [{one} ...]"
    if action.nargs in (argparse.REMAINDER, argparse.PARSER):
        return f"{one} ..."
    if isinstance(action.nargs, int):
        return " ".join(names or [one] * action.nargs)
    return one


def _flag(action: argparse.Action) -> str:
    """``--out OUT`` (the longest option string), or a positional's name, as ``--help`` lists them."""
    if not action.option_strings:
        metavar = _metavar(action)
        return " ".join(metavar) if isinstance(metavar, tuple) else str(metavar)
    args = _arguments(action)
    option = max(action.option_strings, key=len)
    return f"{option} {args}".strip()


def _help(action: argparse.Action, prog: str) -> str:
    """The help text with argparse's ``%(default)s``-style fields filled in, as ``--help`` shows it."""
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    params["prog"] = prog
    for key, value in list(params.items()):
        if hasattr(value, "__name__"):
            params[key] = value.__name__
    if params.get("choices") is not None:
        params["choices"] = ", ".join(str(c) for c in params["choices"])
    return " ".join((action.help % params).split())


def _visible(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)]


def _usage(prog: str, parser: argparse.ArgumentParser) -> str:
    """A usage line in argparse's notation, wrapped at ``_WIDTH`` columns."""
    parts: list[str] = []
    for action in _visible(parser):
        if isinstance(action, argparse._SubParsersAction):
            parts.append("{" + ",".join(action.choices) + "} ...")
        elif not action.option_strings:
            parts.append(_arguments(action))
        else:
            flag = _flag(action)
            parts.append(flag if action.required else f"[{flag}]")
    lines = textwrap.wrap(" ".join([prog, *parts]), width=_WIDTH, subsequent_indent=" " * (len(prog) + 1),
                          break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """``(name, help, parser)`` of each subcommand of ``parser``, in the order ``--help`` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def _anchor(prog: str) -> str:
    return prog.lower().replace(" ", "-")


def _section(prog: str, summary: str, parser: argparse.ArgumentParser, level: int) -> list[str]:
    lines = [f"{'#' * level} {prog}", ""]
    if summary:
        lines += [f"*{_cell(summary)}*", ""]
    lines += ["```text", _usage(prog, parser), "```", ""]
    description = inspect.cleandoc(parser.description or "")
    if description:  # as --help prints it (RawDescriptionHelpFormatter): indented examples stay as written
        lines += ["```text", description, "```", ""]
    rows = []
    for action in _visible(parser):
        if isinstance(action, argparse._SubParsersAction):
            continue
        flag = _flag(action)
        if action.option_strings and len(action.option_strings) > 1:
            short = [o for o in action.option_strings if o != max(action.option_strings, key=len)]
            flag = ", ".join(short) + ", " + flag
        required = " (required)" if action.required and action.option_strings else ""
        rows.append(f"| `{_cell(flag)}`{required} | {_cell(_help(action, prog))} |")
    if rows:
        lines += ["| argument | help |", "|---|---|", *rows, ""]
    subs = list(_subcommands(parser))
    if subs:
        lines += ["| subcommand | what it does |", "|---|---|"]
        lines += [f"| [`{name}`](#{_anchor(f'{prog} {name}')}) | {_cell(text)} |" for name, text, _ in subs]
        lines.append("")
        for name, text, sub in subs:
            lines += _section(f"{prog} {name}", text, sub, min(level + 1, 4))
    return lines


def cli_markdown(parser: argparse.ArgumentParser | None = None) -> str:
    """The text of ``docs/cli.md`` for ``parser`` (default: the live ``eipl-trt`` parser)."""
    if parser is None:
        from eipl_trt.cli import build_parser

        parser = build_parser()
    prog = parser.prog
    lines = [
        f"# The `{prog}` command",
        "",
        f"<!-- GENERATED from the argparse parsers of eipl_trt/cli/ by `{COMMAND}`; do not edit "
        "(test/test_clidocs.py fails when this file is stale). -->",
        "",
        f"`{prog}` is one command with a subcommand per task; `{prog} COMMAND --help` prints the same text as "
        "below. Errors that you can fix (a missing file, a flag out of range) end the command with exit "
        "code 1 and one line that says what to do; `-v` logs debug messages.",
        "",
    ]
    body = _section(prog, "", parser, 1)
    lines += body[2:]  # the top-level section without its heading; subcommands at level 2
    return "\n".join(lines).rstrip("\n") + "\n"


def generate(root: Path) -> dict[Path, str]:
    """``{root/docs/cli.md: text}``."""
    return {root / CLI_MD: cli_markdown()}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m eipl_trt.cli.clidocs [--write] [--diff] [--root DIR]``."""
    return run_generator(generate, argv, prog="eipl_trt.cli.clidocs", root=Path.cwd(),
                         description="Generate docs/cli.md from the eipl-trt argparse parsers.")


if __name__ == "__main__":
    sys.exit(main())
