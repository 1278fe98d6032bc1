"""The import rules of the architecture (docs/architecture.md), checked by reading the code.

Imports follow the data flow: ``engine`` imports nothing of ours (nor Django or Celery); ``workers``
may call ``webapp``'s services; ``webapp`` reaches ``workers`` only by sending a task by name
(``webapp.runs.dispatch``), so it imports nothing from ``workers``. No module reaches into another
package's private names, and the modules of ``webapp`` and ``workers`` import each other in no
circle when they load.

Every ``.py`` file is parsed (``ast``), nothing is imported, so a broken module cannot hide a rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "webapp", "workers")


class Import:
    """One imported name: ``module`` (absolute), ``name`` (for ``from module import name``, else
    None), where it stands and whether it runs when the importing module loads."""

    def __init__(self, module: str, name: str | None, line: int, at_load: bool):
        self.module, self.name, self.line, self.at_load = module, name, line, at_load

    @property
    def top(self) -> str:
        return self.module.split(".")[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                files[module_name(path)] = path
    return files


MODULES = source_files()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str) -> list[Import]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, at_load: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, None, node.lineno, at_load) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importing module's package
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.extend(Import(base, alias.name, node.lineno, at_load) for alias in node.names)
        if isinstance(node, ast.If) and _is_type_checking(node):
            return  # annotations only: never executed
        for child in ast.iter_child_nodes(node):
            inside_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(child, at_load and not inside_function)

    visit(tree, True)
    return found


IMPORTS = {module: imports_of(module) for module in MODULES}


def target_module(entry: Import) -> str | None:
    """The module of ours that an import loads: ``from a.b import c`` is ``a.b.c`` when that is a
    module, else ``a.b``; None when it is not ours."""
    if entry.name is not None and f"{entry.module}.{entry.name}" in MODULES:
        return f"{entry.module}.{entry.name}"
    return entry.module if entry.module in MODULES else None


def violations(rule) -> list[str]:
    return [f"{MODULES[module].relative_to(ROOT)}:{entry.line}: {rule.__doc__.strip()} "
            f"({entry.module}{'.' + entry.name if entry.name else ''})"
            for module, entries in IMPORTS.items() for entry in entries if rule(module, entry)]


def engine_imports_platform(module: str, entry: Import) -> bool:
    """engine imports webapp, workers, Django or Celery"""
    return module.split(".")[0] == "engine" and entry.top in ("webapp", "workers", "django", "celery", "channels")


def webapp_imports_workers(module: str, entry: Import) -> bool:
    """webapp imports workers (send a task by name instead: webapp.runs.dispatch)"""
    return module.split(".")[0] == "webapp" and entry.top == "workers"


def private_name_of_another_package(module: str, entry: Import) -> bool:
    """a private name of another package"""
    if entry.top not in PACKAGES or entry.top == module.split(".")[0]:
        return False
    path = [*entry.module.split(".")[1:], *([entry.name] if entry.name else [])]
    return any(part.startswith("_") and not part.startswith("__") for part in path)


def test_the_engine_imports_nothing_of_the_platform():
    assert violations(engine_imports_platform) == []


def test_the_web_app_does_not_import_the_workers():
    assert violations(webapp_imports_workers) == []


def test_no_module_imports_a_private_name_of_another_package():
    assert violations(private_name_of_another_package) == []


def test_no_module_uses_a_private_name_of_a_module_it_imports():
    """``from workers import training`` then ``training._claim(...)``: what another module needs of
    a module is public. (Within one module, and ``self._x``, private names are of course fine.)"""
    found = []
    for module, path in MODULES.items():
        imported = {}  # local name -> module of ours it is bound to
        for entry in IMPORTS[module]:
            target = target_module(entry)
            if target is not None and (entry.name is None or target.endswith(f".{entry.name}")):
                imported[entry.name or entry.module.split(".")[0]] = target
        if not imported:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported
                    and node.attr.startswith("_") and not node.attr.startswith("__")
                    and imported[node.value.id] != module):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert found == []


def import_graph(packages: tuple[str, ...], *, at_load_only: bool = True) -> dict[str, set[str]]:
    """Which of our modules each module of ``packages`` imports when it loads (with
    ``at_load_only=False``: or at any time, from inside a function too)."""
    graph = {}
    for module, entries in IMPORTS.items():
        if module.split(".")[0] in packages:
            graph[module] = {target for entry in entries if (entry.at_load or not at_load_only)
                             and (target := target_module(entry)) is not None
                             and target.split(".")[0] in packages and target != module}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
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
            connect(node)
    return found


def test_webapp_and_workers_modules_import_each_other_in_no_circle():
    assert circles(import_graph(("webapp", "workers"))) == []


def test_the_runs_and_the_workers_are_in_no_circle_even_through_imports_inside_functions():
    """The web app's runs and the worker package once imported each other in one circle of seven
    modules, closed by imports inside functions; the lifecycle and dispatch modules broke it."""
    graph = import_graph(("webapp", "workers"), at_load_only=False)
    involved = [circle for circle in circles(graph)
                if any(module.startswith(("webapp.runs", "workers")) for module in circle)]
    assert involved == []


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set(), "c": {"b"}}, []),
])
def test_the_circle_finder_finds_circles(graph, expected):
    assert circles(graph) == expected


def test_the_rules_read_lazy_imports_too():
    """The module-level graph leaves out imports inside functions; the package rules do not."""
    lazy = [entry for entries in IMPORTS.values() for entry in entries if not entry.at_load]
    assert lazy, "no import inside a function was found: the reader is broken"
    assert any(entry.at_load for entries in IMPORTS.values() for entry in entries)
