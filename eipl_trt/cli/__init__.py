"""The ``eipl-trt`` command: subcommands over library functions.

Each subcommand lives in ``eipl_trt/cli/<name>.py`` and defines::

    HELP: str                                   # one line for `eipl-trt --help`
    def add_arguments(parser) -> None           # argparse flags, each with help=
    def run(args) -> int                        # calls into the library; 0 on success

Subcommand modules import heavy dependencies (torch, onnxruntime, rosbags) inside ``run`` so
``eipl-trt --help`` is instant and works without them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from typing import Sequence

from eipl_trt import __version__
from eipl_trt.errors import EipltrtError

__all__ = ["main", "build_parser", "SUBCOMMANDS"]

#: Subcommand names in the order `--help` lists them.
SUBCOMMANDS = ("export", "quantize", "dataset", "train", "evaluate", "bench", "build", "inspect", "sim", "control", "quantlab")


def build_parser() -> argparse.ArgumentParser:
    """The ``eipl-trt`` parser with every subcommand (also what ``docs/cli.md`` is generated from)."""
    parser = argparse.ArgumentParser(
        prog="eipl-trt",
        description="Export, train, evaluate and benchmark EIPL models for the eipl_trt ROS 2 node.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        modname = f"eipl_trt.cli.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        module = importlib.import_module(modname)
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``eipl-trt``. Returns the process exit code."""
    try:
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    except AttributeError:
        pass
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except EipltrtError as exc:
        print(f"eipl-trt {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"eipl-trt {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
