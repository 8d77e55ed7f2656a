"""Small helpers the benchmark scripts share: nearest-rank percentiles, the commit measured."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`, which must not be empty."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def git_rev() -> str:
    """The short commit id of the working tree's HEAD ('' outside a git checkout)."""
    return subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
