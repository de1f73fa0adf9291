"""The import graph of the installed packages: no cycle, and no import from a lower layer up.

The graph is read from the sources (every ``import`` and ``from ... import``, function-level
ones included), so a lazy import cannot hide an arrow. ``from package import name`` where
``name`` is a module of the package is an arrow to that module, as Python resolves it.

Layers, lowest first; a module may import its own sub-package and the layers below it:

- ``theory`` never imports ``numerics``, ``proofs`` or torch (it is the numpy/sympy floor);
  ``proofs`` imports ``theory`` only; ``numerics`` may import ``theory``.
- ``theory``'s own layers are the ones its package docstring names (:data:`THEORY_LAYERS`).
- ``numerics``: :data:`NUMERICS_LAYERS`.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest
from strategies import ROOT

PACKAGES = ("theory", "numerics", "proofs")

NUMERICS_LAYERS = (
    ("devices", "io"),
    ("data", "run_directory"),
    ("models",),
    ("probing",),
    ("training",),
    ("plots", "bench"),
    ("verify",),
    ("experiments", "sweep"),
    ("cli",),
    ("__main__", "<package>"),
)
"""numerics' sub-packages (and top modules) from the floor up; one layer may hold several that
do not import each other."""


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The modules ``name`` imports (absolute names; relative imports resolved)."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in MODULES else base)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _sub_package(name: str) -> str:
    parts = name.split(".")
    return "<package>" if len(parts) == 1 else parts[1]


def _layer_of(name: str, layers: tuple[tuple[str, ...], ...]) -> int:
    sub = _sub_package(name)
    for k, layer in enumerate(layers):
        if sub in layer:
            return k
    raise AssertionError(f"{name}: sub-package {sub!r} is in no layer of {layers}")


def _theory_layers() -> tuple[tuple[str, ...], ...]:
    from theory import LAYERS

    return tuple(tuple(layer) for layer in LAYERS)


def test_no_import_cycle() -> None:
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v] & set(MODULES)):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(MODULES):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("package, forbidden", [
    ("theory", ("numerics", "proofs", "torch")),
    ("proofs", ("numerics", "torch")),
])
def test_lower_packages_do_not_import_higher_ones(package: str, forbidden: tuple[str, ...]
                                                   ) -> None:
    bad = sorted((name, target) for name, targets in GRAPH.items()
                 if name.split(".")[0] == package for target in targets
                 if target.split(".")[0] in forbidden)
    assert not bad, f"{package} imports {forbidden}: {bad}"


@pytest.mark.parametrize("package", ["numerics", "theory"])
def test_no_import_runs_up_a_layer(package: str) -> None:
    layers = NUMERICS_LAYERS if package == "numerics" else _theory_layers()
    upward = []
    for name, targets in GRAPH.items():
        if name.split(".")[0] != package:
            continue
        here = _layer_of(name, layers)
        for target in targets:
            if target.split(".")[0] != package or target not in MODULES:
                continue
            there = _layer_of(target, layers)
            same = _sub_package(target) == _sub_package(name)
            if there > here or (there == here and not same):
                upward.append(f"{name} -> {target}")
    assert not upward, f"imports up a layer (or across one) of {package}: {sorted(upward)}"


def test_no_module_imports_a_private_name_of_another() -> None:
    found = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found += [f"{name}: {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")
                          and node.module.split(".")[0] in PACKAGES]
    assert not found, f"private names imported across modules: {found}"


def test_every_sub_package_has_a_layer() -> None:
    subs = defaultdict(set)
    for name in MODULES:
        subs[name.split(".")[0]].add(_sub_package(name))
    for sub in subs["numerics"]:
        _layer_of(f"numerics.{sub}" if sub != "<package>" else "numerics", NUMERICS_LAYERS)
