"""The dependency rules of docs/ARCHITECTURE.md, checked on the source (like import-linter)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "lamina"

# layer → the lamina packages it may import (besides itself)
ALLOWED = {
    "domain": set(),
    "http": set(),
    "storage": {"domain"},
    "runtime": {"domain", "http"},
    "service": {"domain", "observability"},
    "adapters": {"domain"},
    "api": {"domain", "service", "http", "observability"},
    "observability": set(),
    "pollers": {"domain", "service"},
}


def lamina_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lamina."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("lamina.")}
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_point_one_way(layer):
    for path in (SRC / layer).rglob("*.py"):
        if "bootstraps" in path.parts:
            continue  # runs inside environments, imports nothing of the engine
        wrong = lamina_imports(path) - ALLOWED[layer] - {layer}
        assert not wrong, f"{path.relative_to(SRC)} imports {sorted(wrong)}"


def test_bootstraps_use_the_standard_library_only():
    source = (SRC / "runtime" / "bootstraps" / "python" / "bootstrap.py").read_text()
    tree = ast.parse(source)
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.module}
    import sys
    assert names <= set(sys.stdlib_module_names), names - set(sys.stdlib_module_names)


def test_pyflakes_finds_nothing():
    """Unused imports, undefined names and the like (ruff's F rules) fail the build."""
    import subprocess
    import sys
    root = SRC.parent.parent
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "F", "--output-format", "concise",
         "--extend-exclude", "tests/functions/python_broken", "src", "tests", "bench"],
        cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
