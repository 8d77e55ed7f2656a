"""Which node flags a runtime starts with, from the interpreter's release (real executables)."""

from __future__ import annotations

import shutil

import pytest

from lamina.runtime import bootstrap, interpreters


@pytest.mark.parametrize(
    ("release", "takes"),
    [
        (None, False),
        ((20, 20, 2), False),
        ((22, 13, 1), False),
        ((22, 14, 0), True),
        ((23, 6, 1), False),
        ((23, 7, 0), True),
        ((24, 0, 0), True),
    ],
)
def test_disable_sigusr1_only_where_node_has_it(release, takes):
    flags = bootstrap.node_flags(128, release)
    assert ("--disable-sigusr1" in flags) is takes
    assert flags[-2:] == ["--max-semi-space-size=6", "--max-old-space-size=116"]
    assert flags[:3] == list(bootstrap.NODE_FLAGS)


def test_a_mapped_node_is_asked_its_release(tmp_path):
    fake = tmp_path / "node"
    fake.write_text("#!/bin/sh\necho v22.14.0\n")
    fake.chmod(0o755)
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\nexit 0\n")
    silent.chmod(0o755)
    found = interpreters.Interpreters(
        {"nodejs22.x": str(fake), "nodejs24.x": str(silent), "python3.12": str(fake)}
    )
    assert found.resolve("nodejs22.x").release == (22, 14, 0)
    assert found.resolve("nodejs24.x").release is None  # says no version: no extra flag
    assert found.resolve("python3.12").release is None  # only node is asked
    assert interpreters.node_release(str(tmp_path / "missing")) is None


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_a_found_node_carries_its_release():
    found = interpreters.Interpreters().resolve("nodejs20.x")
    assert found is not None and found.release is not None
    assert found.release[0] == found.version[0]
