"""Files generated from the code (reference docs, the params file, launch arguments): compare or write them.

A generator builds the text of each file in memory, as ``{path: text}``; :func:`differences`
compares that with the files on disk (the tests fail on any difference) and :func:`write_changed`
writes the files that differ. :func:`run_generator` is the command line both generators share::

    python -m eipl_trt.ros.paramdocs --write     # docs/parameters.md, config/eipl_trt.yaml, launch arguments
    python -m eipl_trt.cli.clidocs --write       # docs/cli.md
    python -m eipl_trt.ros.paramdocs             # (no --write) lists the stale files; exit 1 if any
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path
from typing import Callable, Mapping, Sequence

from eipl_trt.common.atomic import write_text_atomic

__all__ = ["BEGIN", "END", "differences", "replace_block", "run_generator", "write_changed"]

#: Markers around a generated block inside a hand-written file (``# BEGIN GENERATED <name> ...``).
BEGIN = "BEGIN GENERATED"
END = "END GENERATED"


def differences(generated: Mapping[Path, str]) -> dict[Path, str]:
    """Unified diffs (file on disk -> generated text) of every file that differs or is missing."""
    diffs: dict[Path, str] = {}
    for path, text in generated.items():
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            diffs[path] = "".join(difflib.unified_diff(
                current.splitlines(keepends=True), text.splitlines(keepends=True),
                fromfile=f"{path} (committed)", tofile=f"{path} (generated)"))
    return diffs


def write_changed(generated: Mapping[Path, str]) -> list[Path]:
    """Write each file whose text differs (atomically). Returns the files written."""
    changed = list(differences(generated))
    for path in changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, generated[path])
    return changed


def replace_block(text: str, name: str, block: str) -> str:
    """``text`` with the lines between its ``BEGIN GENERATED <name>`` and ``END GENERATED <name>`` marker
    lines replaced by ``block`` (the marker lines themselves are kept).

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    lines = text.splitlines(keepends=True)
    begins = [i for i, line in enumerate(lines) if f"{BEGIN} {name}" in line]
    ends = [i for i, line in enumerate(lines) if f"{END} {name}" in line]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise ValueError(f"expected one '{BEGIN} {name}' line followed by one '{END} {name}' line")
    if block and not block.endswith("\n"):
        block += "\n"
    return "".join(lines[: begins[0] + 1]) + block + "".join(lines[ends[0]:])


def run_generator(generate: Callable[[Path], Mapping[Path, str]], argv: Sequence[str] | None, *, prog: str,
                  description: str, root: Path) -> int:
    """Command line of a generator: list the stale files (exit 1 if any), or write them with ``--write``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--write", action="store_true", help="write the files that differ (default: only list them)")
    parser.add_argument("--diff", action="store_true", help="print what would change")
    parser.add_argument("--root", type=Path, default=root, help="the source checkout (default %(default)s)")
    args = parser.parse_args(argv)
    generated = generate(args.root)
    if args.write:
        for path in write_changed(generated):
            print(f"wrote {path}")
        return 0
    diffs = differences(generated)
    for path, diff in diffs.items():
        print(diff if args.diff else f"stale: {path}")
    if diffs:
        print(f"run `python -m {prog} --write` to regenerate")
    return 1 if diffs else 0
