"""The mypyc build of the hot modules (scripts/compile.py) and `lamina.COMPILED`'s guard: a
build older than its sources is never run, and LAMINA_COMPILED=0 turns it off."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import lamina

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
MODULES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["lamina"]["compile"][
    "modules"
]
PROBE = (
    "import json, lamina, importlib; "
    "print(json.dumps([lamina.COMPILED, importlib.import_module(%r).__file__]))"
)
needs_build = pytest.mark.skipif(
    os.environ.get("LAMINA_COMPILE") == "0", reason="LAMINA_COMPILE=0: nothing is compiled"
)


def _probe(src: Path, module: str, **env: str) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE % module],
        env={**os.environ, "PYTHONPATH": str(src), **env},
        cwd=src.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    state, path = json.loads(done.stdout)
    return state, path


@needs_build
def test_the_tests_run_the_compiled_engine() -> None:
    # scripts/setup compiles (and scripts/test runs it): what is measured is what is tested
    from lamina.http import server

    assert lamina.COMPILED == "mypyc", "the build is missing or stale: run scripts/compile.py"
    assert server.__file__ is not None
    assert server.__file__.endswith(".so")


@needs_build
def test_every_listed_module_is_compiled() -> None:
    manifest = json.loads((SRC / "lamina" / "_compiled.json").read_text())
    assert sorted(manifest["modules"]) == sorted(MODULES)
    for module in MODULES:
        state, path = _probe(SRC, module)
        assert (state, Path(path).suffix) == ("mypyc", ".so"), module


@needs_build
def test_off_runs_the_sources() -> None:
    state, path = _probe(SRC, "lamina.runtime.environment", LAMINA_COMPILED="0")
    assert state == "off"
    assert path == str(SRC / "lamina" / "runtime" / "environment.py")


@needs_build
def test_a_changed_source_makes_every_compiled_module_run_from_source(tmp_path: Path) -> None:
    copy = tmp_path / "src"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    edited = copy / "lamina" / "domain" / "ids.py"
    edited.write_text(edited.read_text() + "\nEDITED = True\n")
    # the edited module runs as edited, and the others from source too (a compiled module
    # calls its compiled neighbours directly: mixing the two would run the old code)
    state, path = _probe(copy, "lamina.domain.ids")
    assert (state, path) == ("stale", str(edited))
    state, path = _probe(copy, "lamina.http.server")
    assert (state, path) == ("stale", str(copy / "lamina" / "http" / "server.py"))
    done = subprocess.run(
        [sys.executable, "-c", "import lamina.domain.ids as m; print(m.EDITED)"],
        env={**os.environ, "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "True", done.stderr


@needs_build
def test_a_changed_module_the_compiled_ones_import_makes_the_build_stale(tmp_path: Path) -> None:
    # its types are compiled into the build (domain/limits.py: what api/wire checks against)
    copy = tmp_path / "src"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = json.loads((copy / "lamina" / "_compiled.json").read_text())
    assert "lamina.domain.limits" in manifest["depends"]
    assert "lamina.cli_trace" not in manifest["depends"]  # a client command: not imported
    untouched = _probe(copy, "lamina.http.server")
    (copy / "lamina" / "cli_trace.py").write_text(
        (copy / "lamina" / "cli_trace.py").read_text() + "\n# an edit\n"
    )
    after_unrelated = _probe(copy, "lamina.http.server")
    edited = copy / "lamina" / "domain" / "limits.py"
    edited.write_text(edited.read_text() + "\n# an edit\n")
    assert untouched[0] == after_unrelated[0] == "mypyc"
    assert _probe(copy, "lamina.http.server") == (
        "stale",
        str(copy / "lamina" / "http" / "server.py"),
    )


def test_without_a_manifest_nothing_counts_as_compiled(tmp_path: Path) -> None:
    copy = tmp_path / "src"
    shutil.copytree(
        SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "*.so", "_compiled.json")
    )
    state, path = _probe(copy, "lamina.http.server")
    assert (state, path) == ("none", str(copy / "lamina" / "http" / "server.py"))


def _written_out_inits() -> list[tuple[str, ast.ClassDef, ast.FunctionDef]]:
    """The dataclasses of the compiled modules that write their `__init__` out."""
    found = []
    for module in MODULES:
        tree = ast.parse(SRC.joinpath(*module.split(".")).with_suffix(".py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                "dataclass" in ast.unparse(d) for d in node.decorator_list
            ):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                        found.append((f"{module}.{node.name}", node, item))
    return found


def test_a_written_out_dataclass_init_takes_and_sets_its_fields() -> None:
    # a dataclass made on every call writes its __init__ out, for mypyc to compile (the one
    # @dataclass generates runs interpreted): it must be the one @dataclass would generate
    written = _written_out_inits()
    assert {name.rsplit(".", 1)[1] for name, _, _ in written} >= {
        "AttemptRecord",
        "InvocationSummary",
        "InvokeCommand",
    }
    for name, cls, init in written:
        fields = [
            (item.target.id, ast.unparse(item.annotation), item.value)
            for item in cls.body
            if isinstance(item, ast.AnnAssign)
            and isinstance(item.target, ast.Name)
            and "ClassVar" not in ast.unparse(item.annotation)
        ]
        args = init.args.args[1:]
        defaults = [None] * (len(args) - len(init.args.defaults)) + list(init.args.defaults)
        assert not init.args.kwonlyargs and init.args.vararg is None, name
        assert [
            (a.arg, ast.unparse(a.annotation) if a.annotation else "", d and ast.unparse(d))
            for a, d in zip(args, defaults, strict=True)
        ] == [(f, t, v and ast.unparse(v)) for f, t, v in fields], name
        assert [ast.unparse(statement) for statement in init.body] == [
            f"self.{f} = {f}" for f, _, _ in fields
        ], name
