"""Regenerate ``test/data/trt_api/tensorrt-<version>.txt``: the names each real TensorRT Python binding has.

The TensorRT Python wheels cannot be imported without libnvinfer (a GPU install), but their
``tensorrt.so`` holds every method, property and enum name as a C string, and ``__init__.py`` holds
the Python-level names (``__version__``, ``nptype``, ...). This script downloads the small
``*-bindings`` wheels with pip, extracts those names and writes one sorted list per version.

The linker merges string tails (``"INT8"`` may exist only as the end of ``"UINT8"``), so each
printable string is reduced to its trailing identifier, and a name is *present* when some listed
string ends with it (see ``test/standins/trt_names.py``). Usage::

    python scripts/trt_api_names.py            # all versions below, into test/data/trt_api/
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

#: (list name, pip requirement). 8.6.1 is the last TensorRT 8 binding on PyPI (JetPack 5/6.0 ship 8.5/8.6).
WHEELS = (
    ("8.6.1", "tensorrt-bindings==8.6.1"),
    ("10.3.0", "tensorrt-cu12-bindings==10.3.0"),
    ("10.13.0.35", "tensorrt-cu12-bindings==10.13.0.35"),
    ("11.4.0.106", "tensorrt-cu12-bindings==11.4.0.106"),
)
_TAIL = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*$")


def names_from_wheel(wheel: Path) -> list[str]:
    """The trailing identifiers of the printable strings of ``tensorrt*.so`` plus ``__init__.py``'s names."""
    names: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            base = info.filename.rsplit("/", 1)[-1]
            if base.startswith("tensorrt") and base.endswith(".so"):
                data = zf.read(info)
                for run in re.finditer(rb"[\x20-\x7e]{2,}", data):
                    m = _TAIL.search(run.group())
                    if m and len(m.group()) >= 2 and not m.group().startswith(b"_Z"):
                        names.add(m.group().decode())
            elif info.filename.count("/") == 1 and base == "__init__.py":
                tree = ast.parse(zf.read(info).decode("utf-8"))
                for node in tree.body:
                    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                        names.add(node.name)
                    elif isinstance(node, ast.Assign):
                        names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return sorted(names)


def main(argv: list[str] | None = None) -> int:
    """Download the wheels and write the lists."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "test/data/trt_api")
    parser.add_argument("--wheels", type=Path, help="directory with already-downloaded wheels (skips pip)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.wheels or Path(tmp)
        for version, req in WHEELS:
            if args.wheels is None:
                subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                                "-d", str(folder), req], check=True, stdout=subprocess.DEVNULL)
            dist = req.split("==")[0].replace("-", "_")
            wheels = sorted(folder.glob(f"{dist}-{version}-*.whl"))
            if not wheels:
                raise SystemExit(f"no wheel for {req} in {folder}")
            names = names_from_wheel(wheels[0])
            target = args.out / f"tensorrt-{version}.txt"
            target.write_text(f"# {req} ({wheels[0].name}): trailing identifiers of tensorrt.so strings\n"
                              + "\n".join(names) + "\n", encoding="utf-8")
            print(f"{target}: {len(names)} names")
    return 0


if __name__ == "__main__":
    sys.exit(main())
