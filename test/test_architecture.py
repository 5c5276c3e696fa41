"""The package layering of docs/architecture.md: no import circles, no import from a higher-ranked package.

Every ``import``/``from ... import`` in eipl_trt/ counts, wherever it sits in a file: module level,
inside a function (lazy imports) or under ``if TYPE_CHECKING:``. ``from pkg import submodule`` is an
edge to the submodule, not to ``pkg/__init__.py``; ``from pkg import name`` is an edge to ``pkg``.

``python test/test_architecture.py`` prints the circles and upward imports found and the number of
modules per package, without running pytest.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "eipl_trt"

#: A module may import from its own package or from packages of a lower rank only. The package of a
#: module is the first name under eipl_trt/ (``eipl_trt.runners.tensorrt.cuda`` -> ``runners``; a
#: top-level module is its own package: ``eipl_trt.predictor`` -> ``predictor``); "" is
#: ``eipl_trt/__init__.py``. docs/architecture.md explains each rank.
RANKS: dict[str, int] = {
    "errors": 0, "common": 0, "": 0,
    "spec": 1, "imaging": 1,
    "paths": 2, "models": 2,
    "runners": 3, "control": 3,
    "predictor": 4,
    "camera": 5, "power": 5,
    "bagio": 6,
    "evaluate": 7, "bench": 7,
    "precision": 8, "train": 8,
    "ros": 9,
    "sim": 10, "demo": 10,
    "cli": 11,
}

#: Same-rank imports between different packages are refused, except these (importer, imported):
#: the root ``eipl_trt/__init__.py`` re-exports ``EipltrtError`` from ``errors``.
SAME_RANK_ALLOWED: set[tuple[str, str]] = {("", "errors")}

#: Circles tolerated for now, each with what removes it. test_known_circles_are_still_there fails
#: once one is gone, so that its entry goes too; a circle not listed here fails test_no_import_circles.
KNOWN_CIRCLES: dict[frozenset[str], str] = {}


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under eipl_trt/ (``pkg/__init__.py`` is ``pkg``)."""
    modules: dict[str, Path] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The module ``target`` names, or the longest existing parent of it; None outside eipl_trt."""
    if target != PACKAGE and not target.startswith(PACKAGE + "."):
        return None
    while target not in modules and "." in target:
        target = target.rsplit(".", 1)[0]
    return target if target in modules else None


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The eipl_trt modules that module ``name`` (in file ``path``) imports, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    edges: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                drop = node.level - 1 if is_package else node.level
                base = base[: len(base) - drop] if drop else base
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = []
            for alias in node.names:
                sub = f"{stem}.{alias.name}"
                targets.append(sub if sub in modules else stem)
        else:
            continue
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved is not None and resolved != name:
                edges.add(resolved)
    return edges


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the eipl_trt modules it imports."""
    modules = module_files(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def package_of(module: str) -> str:
    """``eipl_trt.runners.base`` -> ``runners``; ``eipl_trt`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:  # iterative, so deep graphs do not hit the recursion limit
        nonlocal counter
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def circle_edges(graph: dict[str, set[str]], component: list[str]) -> list[tuple[str, str]]:
    """The imports inside one circle."""
    members = set(component)
    return sorted((a, b) for a in component for b in graph[a] if b in members)


def upward_imports(graph: dict[str, set[str]], ranks: dict[str, int] | None = None) -> list[str]:
    """One line per import that breaks the ranks (or touches a package with no rank)."""
    ranks = RANKS if ranks is None else ranks
    bad: list[str] = []
    for source in sorted(graph):
        for target in sorted(graph[source]):
            src_pkg, dst_pkg = package_of(source), package_of(target)
            if src_pkg == dst_pkg:
                continue
            if src_pkg not in ranks or dst_pkg not in ranks:
                missing = src_pkg if src_pkg not in ranks else dst_pkg
                bad.append(f"{source} -> {target}  (package {missing!r} has no rank)")
                continue
            src_rank, dst_rank = ranks[src_pkg], ranks[dst_pkg]
            if dst_rank < src_rank or (src_pkg, dst_pkg) in SAME_RANK_ALLOWED:
                continue
            kind = "same rank" if dst_rank == src_rank else "upward"
            bad.append(f"{source} -> {target}  ({kind}: {src_pkg or 'eipl_trt'} {src_rank} -> "
                       f"{dst_pkg or 'eipl_trt'} {dst_rank})")
    return bad


def report(root: Path = ROOT, ranks: dict[str, int] | None = None) -> str:
    """The circles, the rank violations and the module count per package, as text."""
    graph = import_graph(root)
    lines: list[str] = []
    found = circles(graph)
    lines.append(f"import circles: {len(found)}")
    for component in found:
        known = KNOWN_CIRCLES.get(frozenset(component))
        lines.append(f"  circle of {len(component)}: " + ", ".join(component)
                     + (f"  (known, tolerated until: {known})" if known else ""))
        lines.extend(f"    {a} -> {b}" for a, b in circle_edges(graph, component))
    bad = upward_imports(graph, ranks)
    lines.append(f"imports against the ranks: {len(bad)}")
    lines.extend(f"  {line}" for line in bad)
    counts = Counter(package_of(m) or "eipl_trt (__init__)" for m in graph)
    lines.append(f"modules: {len(graph)}, imports between them: {sum(len(v) for v in graph.values())}")
    for pkg, count in sorted(counts.items()):
        rank = (ranks if ranks is not None else RANKS).get("" if pkg.startswith("eipl_trt") else pkg, "-")
        lines.append(f"  {pkg:24s} rank {rank!s:>2}  {count} module(s)")
    return "\n".join(lines)


def test_no_import_circles() -> None:
    graph = import_graph()
    found = [c for c in circles(graph) if frozenset(c) not in KNOWN_CIRCLES]
    assert not found, "import circles in eipl_trt/:\n" + "\n".join(
        ", ".join(c) + "\n    " + "\n    ".join(f"{a} -> {b}" for a, b in circle_edges(graph, c))
        for c in found)


def test_known_circles_are_still_there() -> None:
    found = {frozenset(c) for c in circles(import_graph())}
    gone = [sorted(c) for c in KNOWN_CIRCLES if c not in found]
    assert not gone, f"these circles are gone (or changed): delete them from KNOWN_CIRCLES: {gone}"


def test_no_upward_imports() -> None:
    bad = upward_imports(import_graph())
    assert not bad, ("imports against the ranks of docs/architecture.md (a module may import its own "
                     "package or lower-ranked ones only):\n  " + "\n  ".join(bad))


def test_every_package_has_a_rank() -> None:
    unranked = sorted({package_of(m) for m in import_graph()} - set(RANKS))
    assert not unranked, f"packages with no rank in test_architecture.RANKS: {unranked}"


def test_the_checker_sees_lazy_relative_and_type_checking_imports(tmp_path: Path) -> None:
    pkg = tmp_path / PACKAGE
    (pkg / "runners").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("")
    (pkg / "runners" / "__init__.py").write_text("from . import base\n")
    (pkg / "runners" / "base.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..predictor import P\n")
    (pkg / "predictor.py").write_text("def f():\n    from eipl_trt.runners import base\n    from .errors import E\n")
    graph = import_graph(tmp_path)
    assert graph["eipl_trt.runners"] == {"eipl_trt.runners.base"}
    assert graph["eipl_trt.runners.base"] == {"eipl_trt.predictor"}
    assert graph["eipl_trt.predictor"] == {"eipl_trt.runners.base", "eipl_trt.errors"}
    assert circles(graph) == [["eipl_trt.predictor", "eipl_trt.runners.base"]]
    assert upward_imports(graph) == [
        "eipl_trt.runners.base -> eipl_trt.predictor  (upward: runners 3 -> predictor 4)"]


if __name__ == "__main__":
    print(report())
    sys.exit(0)
