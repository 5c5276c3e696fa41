"""List the functions in eipl_trt/ longer than N lines (default 60), longest first (#22).

A function's length is counted from its ``def`` line (decorators excluded) to its last line,
docstring and comments included, as a reader sees it. Nested functions are listed on their own and
also count toward the function that holds them.

    python scripts/long_functions.py                 # eipl_trt/, over 60 lines
    python scripts/long_functions.py -n 80 launch    # any folders or files
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Iterator, NamedTuple

ROOT = Path(__file__).resolve().parent.parent


class Function(NamedTuple):
    path: Path
    qualname: str
    lineno: int
    lines: int


def functions(path: Path) -> Iterator[Function]:
    """Every function and method in one Python file, with its qualified name and length."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def walk(node: ast.AST, prefix: str) -> Iterator[Function]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                yield Function(path, name, child.lineno, child.end_lineno - child.lineno + 1)
                yield from walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def python_files(targets: list[Path]) -> Iterator[Path]:
    for target in targets:
        if target.is_file():
            yield target
        else:
            yield from sorted(target.rglob("*.py"))


def long_functions(targets: list[Path], limit: int) -> list[Function]:
    """The functions longer than ``limit`` lines in ``targets`` (files or folders), longest first."""
    found = [f for path in python_files(targets) for f in functions(path) if f.lines > limit]
    return sorted(found, key=lambda f: (-f.lines, str(f.path), f.lineno))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", type=Path, default=[ROOT / "eipl_trt"],
                        help="files or folders to scan (default: eipl_trt/)")
    parser.add_argument("-n", "--lines", type=int, default=60,
                        help="list functions longer than this (default %(default)s)")
    args = parser.parse_args(argv)
    for f in long_functions(args.targets, args.lines):
        try:
            shown = f.path.resolve().relative_to(ROOT)
        except ValueError:
            shown = f.path
        print(f"{f.lines:5d}  {shown}:{f.lineno}  {f.qualname}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
