"""docs/ARCHITECTURE.md stays true: it lists every module of src/lamina and states every
import contract pyproject.toml holds the code to (scripts/check runs the contracts)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "lamina"
DOC = ROOT / "docs" / "ARCHITECTURE.md"

# a module or folder name as the layout writes it: `pool.py`, `cfn/`, `adapters/aws.py`
_NAME = r"(?:[A-Za-z_]\w*/)*(?:[A-Za-z_]\w*\.py|[A-Za-z_]\w*/)"
_TOKEN = re.compile(rf"(?<![\w./-])({_NAME})")
_ENTRY = re.compile(rf"^( +)({_NAME})")


def listed(layout: str) -> set[str]:
    """Every path the layout names, relative to src/lamina. An entry's indentation puts it
    in the folder above it; a name in an entry's description (or its continuation lines)
    is in the entry's folder: the folder itself, or the folder a module entry is in."""
    open_folders: list[tuple[int, str]] = []
    found: set[str] = set()
    here = ""
    for line in layout.splitlines():
        entry = _ENTRY.match(line)
        if entry:
            indent, name = len(entry.group(1)), entry.group(2)
            while open_folders and open_folders[-1][0] >= indent:
                open_folders.pop()
            parent = open_folders[-1][1] if open_folders else ""
            if name.endswith("/"):
                open_folders.append((indent, parent + name))
                here = parent + name
                found.add(here)
            else:
                found.add(parent + name)
                here = parent + name.rpartition("/")[0] + "/" if "/" in name else parent
        tokens = _TOKEN.findall(line)
        found.update(here + token for token in (tokens[1:] if entry else tokens))
    return found


def modules() -> list[str]:
    """Every module (`x.py`) and package (`x/`) under src/lamina, as paths relative to it."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if path.name != "__init__.py":
            found.append(relative)
        elif relative != "__init__.py":
            found.append(relative.removesuffix("__init__.py"))
    return found


def test_the_layout_lists_every_module_and_package() -> None:
    layout = DOC.read_text().split("```", 2)[1]
    names = listed(layout)
    missing = [
        m
        for m in modules()
        if m not in names and not (m.endswith("/") and any(n.startswith(m) for n in names))
    ]
    assert modules() and not missing, f"docs/ARCHITECTURE.md does not list: {missing}"


def test_the_layout_reader_places_names_in_their_folders() -> None:
    layout = """
  app.py                composition root
  adapters/aws.py       outbound calls
  domain/               pure rules
    model.py, errors.py   values
    cfn/                  templates: template.py (YAML), graph.py
  api/                  the face
    wire.py               see also app.py and
                          urls.py on this line
"""
    assert listed(layout) == {
        "app.py",
        "adapters/aws.py",
        "domain/",
        "domain/model.py",
        "domain/errors.py",
        "domain/cfn/",
        "domain/cfn/template.py",
        "domain/cfn/graph.py",
        "api/",
        "api/wire.py",
        "api/app.py",
        "api/urls.py",
    }


def test_the_page_states_every_import_contract() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    page = " ".join(DOC.read_text().split())
    unstated = [c["name"] for c in contracts if c["name"].split(":")[0] not in page]
    assert contracts and not unstated, f"docs/ARCHITECTURE.md does not state: {unstated}"
