"""Functions a reader can hold in their head (#22, style guide bullet 25): none in eipl_trt/ over 80 lines.

The target is about 60 lines; 80 is the hard cap this test holds. ``python scripts/long_functions.py``
lists the functions over the target (``-n 80`` for those over the cap), longest first. A function's
length runs from its ``def`` line to its last line, docstring included; a nested function also
counts toward the one that holds it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 80

#: Functions over the cap for now, as ``path:qualified name``. test_long_functions_allowed_are_still_long
#: fails once one is split, so that its entry goes too.
ALLOWED: dict[str, str] = {
}


def _long_functions(limit: int) -> dict[str, int]:
    """``path:qualname`` -> length of each function in eipl_trt/ over ``limit`` lines."""
    spec = importlib.util.spec_from_file_location("long_functions", ROOT / "scripts" / "long_functions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = module.long_functions([ROOT / "eipl_trt"], limit)
    return {f"{f.path.relative_to(ROOT).as_posix()}:{f.qualname}": f.lines for f in found}


def test_no_function_over_the_cap() -> None:
    offenders = {name: lines for name, lines in _long_functions(MAX_LINES).items() if name not in ALLOWED}
    assert not offenders, (
        f"functions over {MAX_LINES} lines (aim for about 60: split them into named steps that read top to "
        f"bottom):\n" + "\n".join(f"  {lines:4d}  {name}" for name, lines in offenders.items()))


def test_long_functions_allowed_are_still_long() -> None:
    long = _long_functions(MAX_LINES)
    stale = [name for name in ALLOWED if name not in long]
    assert not stale, f"no longer over {MAX_LINES} lines (or gone): remove from ALLOWED: {', '.join(stale)}"


if __name__ == "__main__":
    for name, lines in _long_functions(MAX_LINES).items():
        print(f"{lines:5d}  {name}{'  (allowed: ' + ALLOWED[name] + ')' if name in ALLOWED else ''}")
