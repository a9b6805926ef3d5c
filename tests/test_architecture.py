"""The shape of the code (issue 8): layers import downwards only, settings are read at the edge, no cycles."""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOWER = ("core", "quality", "ocr", "storage", "pipeline")
PACKAGES = ("core", "quality", "ocr", "storage", "pipeline", "workers", "api", "khana")
# a layer may import only the layers listed for it (besides itself and third-party code)
ALLOWED = {
    "core": set(),
    "quality": {"core"},
    "ocr": {"core"},
    "storage": {"core"},
    "pipeline": {"core", "quality", "ocr", "storage"},
}


def _modules(pkg: str):
    for path in sorted((ROOT / pkg).rglob("*.py")):
        if "migrations" in path.parts:  # Alembic's env.py may read the settings
            continue
        yield path, ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                name = ".".join([*parts, name] if name else parts)
            out.add(name)
            out |= {f"{name}.{a.name}" for a in node.names}
    return out


@pytest.mark.parametrize("pkg", LOWER)
def test_lower_layers_import_only_what_is_below_them(pkg):
    bad = []
    for path, module in _modules(pkg):
        for imp in _imports(path, module):
            top = imp.split(".")[0]
            if top in PACKAGES and top != pkg and top not in ALLOWED[pkg]:
                bad.append(f"{module} imports {imp}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("pkg", LOWER)
def test_lower_layers_read_no_khana_settings_from_the_environment(pkg):
    pattern = re.compile(r"""["']KHANA_[A-Z_]+["']""")
    bad = [f"{module}: {m.group(0)}" for path, module in _modules(pkg)
           for m in pattern.finditer(path.read_text(encoding="utf-8"))]
    assert not bad, "\n".join(bad)


def _cycles(pkg: str) -> list[list[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    names = {module for _, module in _modules(pkg)}
    for path, module in _modules(pkg):
        for imp in _imports(path, module):
            # `from pkg import name` may name a module or an attribute; only modules count
            target = imp if imp in names else None
            if target and target != module and target != pkg:
                graph[module].add(target)
    cycles, state = [], {}

    def visit(n, stack):
        state[n] = 1
        for m in graph[n]:
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif not state.get(m):
                visit(m, stack + [m])
        state[n] = 2

    for n in sorted(names):
        if not state.get(n):
            visit(n, [n])
    return cycles


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_import_cycle_between_modules_of_one_package(pkg):
    assert _cycles(pkg) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    """The check above can fail: a package whose two modules import each other is reported."""
    pkg = tmp_path / "loopy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from loopy import b\n")
    (pkg / "b.py").write_text("import loopy.a\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert _cycles("loopy")
