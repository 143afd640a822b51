"""No import cycles in llmgine_nb: between modules, and between the packages they live in.

The import graph is read from the source with ``ast`` (nothing is
imported), counting every import: at the top of a module, inside a
function (a lazy import is still a dependency), and under
``TYPE_CHECKING`` (a type that needs the other module is one too).  A
cycle means two modules cannot be understood, tested or moved apart.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "llmgine_nb"


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's ``__init__``)."""
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


def _known(name: str, modules: dict[str, tuple[Path, bool]]) -> str:
    """The module ``name`` is in (``pkg.mod.Class`` -> ``pkg.mod``)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (by any import statement anywhere in it)."""
    modules = _modules(root)
    top = root.name
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == top]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.split(".")[0] != top:
                    continue
                # ``from . import x`` imports the module x when there is one, else a name of the package.
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
            else:
                continue
            graph[name].update(_known(t, modules) for t in targets)
        graph[name].discard(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same graph between the package's sub-packages (``llmgine_nb.engine``, ``llmgine_nb.observe`` ...)."""

    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        packages.setdefault(package(module), set()).update(
            package(t) for t in targets if package(t) != package(module)
        )
    return packages


def test_no_module_imports_itself_through_others():
    found = cycles(import_graph())
    assert found == [], "import cycles (each group imports itself through the others): " + "; ".join(
        " <-> ".join(group) for group in found
    )


def test_no_package_imports_itself_through_others():
    # E.g. the engine once imported ``observe`` for the redactor while the observers import the
    # engine's events: the engine could not be used without the observers.
    found = cycles(package_graph(import_graph()))
    assert found == [], "packages that import each other: " + "; ".join(" <-> ".join(group) for group in found)


def test_the_checker_finds_a_cycle(tmp_path):
    # The checker itself can fail: a package whose two modules import each other (one lazily) is caught.
    package = tmp_path / "demo_pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("from .b import thing\n")
    (package / "sub" / "b.py").write_text("def thing():\n    from demo_pkg.sub import a\n")
    (package / "c.py").write_text("from .sub import a\n")
    assert cycles(import_graph(package)) == [["demo_pkg.sub.a", "demo_pkg.sub.b"]]
    (package / "other").mkdir()
    (package / "other" / "__init__.py").write_text("")
    (package / "other" / "d.py").write_text("from ..sub import b\n")
    (package / "sub" / "e.py").write_text("from demo_pkg.other import d\n")
    assert ["demo_pkg.other", "demo_pkg.sub"] in cycles(package_graph(import_graph(package)))


@pytest.mark.parametrize("module", ["llmgine_nb.notebook.kernel_runtime", "llmgine_nb.llm.base"])
def test_the_modules_of_the_issue_are_in_the_graph(module):
    assert module in import_graph(), "the graph reads the package it is meant to check"
