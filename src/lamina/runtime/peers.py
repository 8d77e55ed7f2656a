"""Whose is a Runtime API connection: an environment's listener answers only its own runtime.

AWS_LAMBDA_RUNTIME_API is host:port only, so a token cannot ride along, and any local process
could connect to 127.0.0.1:port. When a connection is accepted, the peer's socket is looked up
in /proc/net/tcp (its inode, by the exact pair of ports) and looked for among the open files
of the runtime and its descendants (/proc/PID/fd, children from /proc/PID/task/*/children).
A socket of anyone else is closed at once, before a byte is read. The check runs once per
connection; the runtimes keep theirs open across invocations, so an invocation pays nothing.
Where /proc has no TCP table (not Linux) the check is skipped.
"""

from __future__ import annotations

import os
import socket

_TCP = "/proc/net/tcp"
AVAILABLE = os.path.exists(_TCP)


def _hex(host: str, port: int) -> str:
    return f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"


def socket_inode(peer: tuple[str, int], local: tuple[str, int]) -> str | None:
    """The inode of the peer's end of the connection peer → local (IPv4), if listed."""
    wanted = f" {_hex(*peer[:2])} {_hex(*local[:2])} "
    with open(_TCP, encoding="ascii") as table:
        text = table.read()
    at = text.find(wanted)
    if at < 0:
        return None
    line = text[at:text.find("\n", at)].split()
    return line[8] if len(line) > 8 else None  # local rem st queues tr retr uid timeout inode


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", "rb") as children:
                found.extend(int(child) for child in children.read().split())
    except (OSError, ValueError):
        pass
    return found


def held_by_tree(root: int, inode: str) -> bool:
    """Whether process `root` or one of its descendants has socket `inode` open."""
    target = f"socket:[{inode}]"
    pending, seen = [root], set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return True
                except OSError:
                    continue
        except OSError:
            continue
        pending.extend(_children(pid))
    return False


def is_own(peer: tuple[str, int] | None, local: tuple[str, int] | None, root: int) -> bool:
    """Whether the connection from `peer` to `local` comes from process tree `root`."""
    if not AVAILABLE:
        return True
    if not peer or not local or root <= 0:
        return False
    try:
        inode = socket_inode(peer, local)
    except (OSError, ValueError):
        return False
    return inode is not None and held_by_tree(root, inode)
