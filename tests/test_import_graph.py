"""The package's imports point down: no cycle, and sub-packages whose ``__init__`` imports nothing.

The graph is read from the source (the AST), with imports inside functions included: an edge
goes from a module to each ``lavis_vila`` module it names (``from a.b import c`` names ``a.b.c``
when that is a module, else ``a.b``). Python runs a package's ``__init__`` before any of its
modules; the sub-packages' ``__init__``s import nothing of ours but ``lavis_vila.lazy``, so that
implicit step adds no edge of its own.
"""
import ast
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "lavis_vila"
LIGHT_INIT_IMPORTS = {"lavis_vila.lazy", "lavis_vila.cli"}  # what a sub-package __init__ may import


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(name: str, path: Path) -> set:
    """The ``lavis_vila`` modules that ``name`` imports anywhere in its source."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package, up level - 1
                package = name.split(".")[: len(name.split(".")) - (path.name != "__init__.py") - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            targets.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names)
    return {target for target in targets if target in MODULES and target != name}


def find_cycle(graph: dict):
    """One cycle as a list of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_import_graph_of_lavis_vila_has_no_cycle():
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    assert sum(len(targets) for targets in graph.values()) > 100  # the graph was read
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_graph_counts_imports_inside_functions_and_the_finder_reports_a_cycle():
    # config_check imports run_setup inside run_keys() only
    assert "lavis_vila.run_setup" in imported_modules("lavis_vila.config_check", MODULES["lavis_vila.config_check"])
    graph = {"lavis_vila.a": {"lavis_vila.b"}, "lavis_vila.b": {"lavis_vila.c"}, "lavis_vila.c": {"lavis_vila.a"}}
    assert find_cycle(graph) == ["lavis_vila.a", "lavis_vila.b", "lavis_vila.c", "lavis_vila.a"]


def test_sub_package_inits_import_nothing_of_ours_but_the_lazy_re_export_helper():
    heavy = {}
    for name, path in MODULES.items():
        if path.name == "__init__.py" and name != "lavis_vila":
            imports = imported_modules(name, path) - LIGHT_INIT_IMPORTS
            tree = ast.parse(path.read_text())
            third_party = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                           for alias in node.names} | {node.module.split(".")[0] for node in ast.walk(tree)
                                                       if isinstance(node, ast.ImportFrom) and node.module}
            if imports or third_party & {"torch", "lavis", "transformers", "numpy"}:
                heavy[name] = sorted(imports | (third_party & {"torch", "lavis", "transformers", "numpy"}))
    assert heavy == {}
