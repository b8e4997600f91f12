"""The shape of the house, checked from the code itself (ast, nothing is run):

- no import circle among the modules of server/ and media/ (imports under TYPE_CHECKING
  count too: a type import that runs back up a layer is the same tangle on paper);
- media/ is pure: it never imports server/ or aiohttp (it runs in worker processes);
- public APIs only: no underscore attribute of aiohttp, uvloop or any other library is
  read or written anywhere in the project (a `._name` that the project does not define
  itself is some library's private detail).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "media")
CHECKED = (*PACKAGES, "tests", "bench")
# Underscore names that are a library's documented public API.
DOCUMENTED = {"_exit"}  # os._exit: ends a forked child without running the parent's cleanup


def _sources(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))
    yield ROOT / "run.py"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    """Every project module this file imports, with the packages a submodule import runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
                found.add(".".join(parts[:i]))
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in _sources(*PACKAGES) if p.name != "run.py"}
    return {module: {m for m in _imports(path, module) if m in files and m != module}
            for module, path in files.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    sys.setrecursionlimit(10_000)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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
    return found


def test_no_import_circles() -> None:
    graph = _graph()
    assert graph.get("server.app")  # the walk sees real imports
    circles = _circles(graph)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_the_circle_check_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_media_is_pure() -> None:
    for path in _sources("media"):
        if path.name == "run.py":
            continue
        imported = _imports(path, _module_name(path))
        assert not {"server", "aiohttp"} & imported, f"{path.name} imports {imported}"


def _own_private_names() -> set[str]:
    """Every `_name` the project defines: functions, classes, attributes it assigns on
    its own objects (`self._x`), module-level names, parameters."""
    names: set[str] = set()
    for path in _sources(*CHECKED):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                    and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return {n for n in names if n.startswith("_")}


def _foreign_private_uses(own: set[str]) -> list[str]:
    found = []
    for path in _sources(*CHECKED):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = None
            if isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level \
                    and not node.module.startswith(CHECKED):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {alias.name}")
                if any(part.startswith("_") and not part.startswith("__")
                       for part in node.module.split(".")):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}")
            if name and name.startswith("_") and not name.startswith("__") \
                    and name not in own and name not in DOCUMENTED:
                found.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)} .{name}")
    return found


def test_public_apis_only() -> None:
    uses = _foreign_private_uses(_own_private_names())
    assert not uses, "underscore attributes of other libraries: " + ", ".join(uses)


def test_the_private_check_sees_a_library_private(tmp_path: Path) -> None:
    tree = ast.parse("reader._eof = True\nx = request.transport._sock\n")
    attrs = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)]
    own = _own_private_names()
    assert [a for a in attrs if a.startswith("_") and a not in own] == ["_eof", "_sock"]
