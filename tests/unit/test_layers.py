"""What the import contracts cannot say: the Python bootstrap uses the standard library only.

The layers of docs/ARCHITECTURE.md are import-linter's contracts (pyproject.toml) and
ruff's lint covers pyflakes: scripts/check runs both before the tests."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "lamina"


def test_bootstraps_use_the_standard_library_only():
    source = (SRC / "runtime" / "bootstraps" / "python" / "bootstrap.py").read_text()
    tree = ast.parse(source)
    names = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    names |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }
    import sys

    assert names <= set(sys.stdlib_module_names), names - set(sys.stdlib_module_names)
