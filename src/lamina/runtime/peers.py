"""Whose is a Runtime API connection: an environment's listener answers only its own runtime.

AWS_LAMBDA_RUNTIME_API is host:port only, so a token cannot ride along, and any local process
could connect to 127.0.0.1:port. When a connection is accepted, the peer's socket is looked up
(its inode, by the exact pair of addresses: sock_diag netlink, else /proc/net/tcp) and looked
for among the open files
of the runtime and its descendants (/proc/PID/fd, children from /proc/PID/task/*/children).
A socket of anyone else is closed at once, before a byte is read. The check runs once per
connection; the runtimes keep theirs open across invocations, so an invocation pays nothing.
Where /proc has no TCP table (not Linux) the check is skipped.
"""

from __future__ import annotations

import os
import socket
import struct

_TCP = "/proc/net/tcp"
AVAILABLE = os.path.exists(_TCP)


def _hex(host: str, port: int) -> str:
    return f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"


def socket_inode(peer: tuple[str, int], local: tuple[str, int]) -> str | None:
    """The inode of the peer's end of the connection peer → local (IPv4), if it exists:
    asked of the kernel by the exact addresses (sock_diag netlink, ~20 µs), else looked up in
    /proc/net/tcp (whose reading grows with every socket of the machine: ms)."""
    try:
        return _diag_inode(peer, local)
    except OSError:
        return _table_inode(peer, local)


_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLMSG_ERROR = 2
_HEADER = struct.Struct("=IHHII")  # nlmsghdr
_REQUEST = struct.Struct("=BBBBI")  # inet_diag_req_v2 before its socket id
_SOCKID = struct.Struct(">HH16s16s")  # ports and addresses, network order
_NOCOOKIE = b"\xff" * 8


def _diag_inode(peer: tuple[str, int], local: tuple[str, int]) -> str | None:
    sockid = (
        _SOCKID.pack(
            peer[1],
            local[1],
            socket.inet_aton(peer[0]).ljust(16, b"\0"),
            socket.inet_aton(local[0]).ljust(16, b"\0"),
        )
        + struct.pack("=I", 0)
        + _NOCOOKIE
    )
    body = _REQUEST.pack(socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    message = _HEADER.pack(_HEADER.size + len(body), _SOCK_DIAG_BY_FAMILY, 1, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(1.0)
        nl.send(message)
        reply = nl.recv(8192)
    length, kind = _HEADER.unpack_from(reply)[:2]
    if kind == _NLMSG_ERROR or length < _HEADER.size + 72:
        return None  # no such socket
    inode = struct.unpack_from("=I", reply, _HEADER.size + 68)[0]  # inet_diag_msg.idiag_inode
    return str(inode) if inode else None


def _table_inode(peer: tuple[str, int], local: tuple[str, int]) -> str | None:
    wanted = f" {_hex(*peer[:2])} {_hex(*local[:2])} "
    with open(_TCP, encoding="ascii") as table:
        text = table.read()
    at = text.find(wanted)
    if at < 0:
        return None
    line = text[at : text.find("\n", at)].split()
    return line[8] if len(line) > 8 else None  # local rem st queues tr retr uid timeout inode


def _children(pid: int) -> list[int]:
    found: list[int] = []
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
