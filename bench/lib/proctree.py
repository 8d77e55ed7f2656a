"""Memory of a server and of its execution environments, read from /proc.

An engine is one process (the root); its execution environments are its descendants (a
runtime process each, or for serverless-offline's Node functions threads of the root).

* `snapshot(root)` reads, for the root and each descendant: state (R, S, T = stopped, i.e.
  frozen), VmRSS and VmHWM (/proc/PID/status), Pss and the private (unshared) bytes
  (/proc/PID/smaps_rollup), and the command line. RSS counts pages shared with other
  processes in full; PSS shares them out; private ("USS") is what one more environment costs.
* `Sampler(root)` polls the tree once per interval in a thread while a measurement runs and
  keeps, per process, the largest RSS seen while it was not stopped ("warm, busy").
* `envs_of(snapshot, kind)` summarizes the descendants that run one runtime family.
"""

from __future__ import annotations

import os
import statistics
import threading


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def parent_table() -> dict[int, int]:
    """pid -> ppid for every readable process."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _read(f"/proc/{name}/stat")
            right = stat.rfind(")")
            if right > 0:
                table[int(name)] = int(stat[right + 2 :].split()[1])
    return table


def descendants(root: int, table: dict[int, int] | None = None) -> list[int]:
    """Every live descendant of root (children first)."""
    table = table if table is not None else parent_table()
    children: dict[int, list[int]] = {}
    for pid, ppid in table.items():
        children.setdefault(ppid, []).append(pid)
    out, stack = [], list(children.get(root, ()))
    while stack:
        pid = stack.pop(0)
        out.append(pid)
        stack.extend(children.get(pid, ()))
    return out


def _status_fields(pid: int) -> dict[str, str]:
    fields = {}
    for line in _read(f"/proc/{pid}/status").splitlines():
        key, _, value = line.partition(":")
        if key in ("State", "VmRSS", "VmHWM", "Threads"):
            fields[key] = value.strip()
    return fields


def _kb(value: str | None) -> int | None:
    return int(value.split()[0]) if value else None


def quick_info(pid: int) -> dict | None:
    """State and RSS only (cheap enough to poll)."""
    fields = _status_fields(pid)
    if not fields:
        return None
    return {"pid": pid, "state": fields.get("State", "?")[:1], "rss_kb": _kb(fields.get("VmRSS"))}


def full_info(pid: int) -> dict | None:
    """State, RSS, peak RSS, PSS, private memory, threads and command line of one process."""
    fields = _status_fields(pid)
    if not fields:
        return None
    rollup = {}
    for line in _read(f"/proc/{pid}/smaps_rollup").splitlines():
        key, _, value = line.partition(":")
        if key in ("Pss", "Private_Clean", "Private_Dirty"):
            rollup[key] = _kb(value)
    cmdline = _read(f"/proc/{pid}/cmdline").split("\0")
    private = None
    if "Private_Clean" in rollup:
        private = rollup["Private_Clean"] + rollup.get("Private_Dirty", 0)
    return {
        "pid": pid,
        "state": fields.get("State", "?")[:1],
        "rss_kb": _kb(fields.get("VmRSS")),
        "hwm_kb": _kb(fields.get("VmHWM")),
        "pss_kb": rollup.get("Pss"),
        "private_kb": private,
        "threads": int(fields.get("Threads", "0") or 0),
        "cmd": " ".join(c for c in cmdline if c)[:200],
    }


def runtime_kind(info: dict) -> str:
    """'python', 'node' or 'other' from the command line's program name."""
    program = os.path.basename(info.get("cmd", "").split(" ")[0])
    if program.startswith("python"):
        return "python"
    if program == "node" or program.startswith("node"):
        return "node"
    return "other"


def snapshot(root: int) -> dict:
    """The root's and every descendant's full_info."""
    infos = [full_info(pid) for pid in descendants(root)]
    return {"root": full_info(root), "children": [i for i in infos if i]}


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 1) if values else None


def envs_of(snap: dict, kind: str) -> dict:
    """Count, states and median/sum memory of the descendants that run `kind`."""
    envs = [c for c in snap.get("children", []) if runtime_kind(c) == kind]
    states: dict[str, int] = {}
    for env in envs:
        states[env["state"]] = states.get(env["state"], 0) + 1
    return {
        "count": len(envs),
        "states": states,
        "rss_kb_median": _median([e["rss_kb"] for e in envs]),
        "pss_kb_median": _median([e["pss_kb"] for e in envs]),
        "private_kb_median": _median([e["private_kb"] for e in envs]),
        "rss_kb_sum": sum(e["rss_kb"] or 0 for e in envs),
        "pss_kb_sum": sum(e["pss_kb"] or 0 for e in envs),
    }


def engine_of(snap: dict) -> dict:
    """The root's own memory figures."""
    root = snap.get("root") or {}
    return {k: root.get(k) for k in ("rss_kb", "hwm_kb", "pss_kb", "private_kb", "threads")}


class Sampler:
    """Polls a process tree in a thread; keeps per-process peak RSS while not stopped."""

    def __init__(self, root: int, interval: float = 1.0) -> None:
        self.root = root
        self.interval = interval
        self.root_rss_max_kb = 0
        self.busy_rss_kb: dict[int, int] = {}
        self.kinds: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:  # noqa: PYI034 - a final class
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        root = quick_info(self.root)
        if root and root["rss_kb"]:
            self.root_rss_max_kb = max(self.root_rss_max_kb, root["rss_kb"])
        for pid in descendants(self.root):
            info = quick_info(pid)
            if not info or info["state"] == "T" or not info["rss_kb"]:
                continue
            if pid not in self.kinds:
                self.kinds[pid] = runtime_kind(
                    {"cmd": _read(f"/proc/{pid}/cmdline").replace("\0", " ")}
                )
            self.busy_rss_kb[pid] = max(self.busy_rss_kb.get(pid, 0), info["rss_kb"])

    def busy(self, kind: str) -> dict:
        """Median and count of the per-process peak RSS seen while running, for `kind`."""
        values = [v for pid, v in self.busy_rss_kb.items() if self.kinds.get(pid) == kind]
        return {
            "count": len(values),
            "rss_kb_median": _median(values),
            "engine_rss_max_kb": self.root_rss_max_kb or None,
        }
