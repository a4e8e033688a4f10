"""The layers of docs/architecture.md hold: no package imports one above it, and no module imports
itself back through others (an import circle). Read from the code's own imports, statically."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Lower numbers are lower layers. A package may import its own modules and packages of lower layers.
LAYERS: dict[str, int] = {
    "config": 0, "schemas": 0, "deploy": 0,
    "clickhouse": 1, "producers": 1,
    "consumer": 2, "transparency": 2,
    "query_api": 3,
    "auditlog": 4,
    "benchmarks": 5,
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The product modules ``path`` imports (``from a.b import c`` counts ``a.b.c`` if it is a module)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def test_no_package_imports_a_package_of_a_higher_layer():
    modules = _modules()
    upward = []
    for name, path in modules.items():
        package = name.split(".")[0]
        for target in _imports(path, modules):
            other = target.split(".")[0]
            if other != package and LAYERS[other] >= LAYERS[package]:
                upward.append(f"{name} -> {target} ({package} layer {LAYERS[package]}, {other} {LAYERS[other]})")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(sorted(upward))


def test_no_module_imports_itself_back_through_others():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    # A package's __init__ re-exporting its own modules is not a circle of behaviour: leave those edges out.
    for name in graph:
        graph[name] = {t for t in graph[name] if not (t.startswith(name + ".") and modules[name].name == "__init__.py")}
    visiting: set[str] = set()
    done: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        visiting.add(node)
        for nxt in sorted(graph[node]):
            if nxt in visiting:
                circles.append([*trail[trail.index(nxt):], nxt] if nxt in trail else [node, nxt])
            elif nxt not in done:
                visit(nxt, [*trail, nxt])
        visiting.discard(node)
        done.add(node)

    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_every_product_package_has_a_layer():
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"}
    assert packages <= set(LAYERS), f"give these a layer in docs/architecture.md and here: {packages - set(LAYERS)}"
