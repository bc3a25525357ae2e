"""Who listens on an instance's port: its own process tree, or a program procrunner did not
start.

A port readiness check must not take a foreign listener for the instance (the router would
send users' requests to it), and an instance should not be spawned onto a port another
program holds: that program is named instead. Both look only where a connection to
127.0.0.1, the probe's and the router's address, would arrive.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import psutil

from procrunner.markers import INCARNATION_MARKER, RUN_MARKER, incarnation_marker
from procrunner.supervise import tree

# The listening addresses a connection to 127.0.0.1 reaches ("::" is dual-stack by default).
_REACHED_FROM_LOOPBACK = frozenset({"127.0.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1"})
_COMMAND_WIDTH = 120


@dataclass(frozen=True)
class Holder:
    """A process listening on ``port``; ``pid`` is None when procrunner may not see which
    (another user's process)."""

    port: int
    pid: int | None = None
    command: str = ""

    def describe(self) -> str:
        if self.pid is None:
            return f"port {self.port} is held by another user's process"
        if not self.command:
            return f"port {self.port} is held by pid {self.pid}"
        command = self.command
        if len(command) > _COMMAND_WIDTH:
            command = command[: _COMMAND_WIDTH - 3] + "..."
        return f"port {self.port} is held by pid {self.pid} ({command})"


def port_holder(port: int) -> Holder | None:
    """The process listening on TCP ``port``, or None if nothing does. Costs three system
    calls while the port is free; the system-wide psutil scan runs only when it is not."""
    if _bindable(port):
        return None
    listeners = [
        conn
        for conn in psutil.net_connections(kind="tcp")
        if conn.status == psutil.CONN_LISTEN and _reached(conn.laddr, port)
    ]
    if not listeners:  # bound but not listening (a client socket, say): no one to name
        return None
    seen = next((conn for conn in listeners if conn.pid is not None), listeners[0])
    return Holder(port, seen.pid, _command(seen.pid))


def tree_listens(label: str, port: int) -> bool:
    """Whether a process of incarnation ``label`` (``web.1#3``, whose leader is a child of
    this process) listens on ``port``: the leader first, as a server usually is its own
    leader, and the whole tree only when it is not."""
    found = _leader(label)
    if found is None:
        return False
    leader, target = found
    if _listens(leader, port):
        return True
    members = tree.members(target.pgid, target.marker, target.since)
    return any(_listens(proc, port) for proc in members if proc.pid != leader.pid)


def _bindable(port: int) -> bool:
    """A listener on the port, on any address 127.0.0.1 reaches, refuses even a
    ``SO_REUSEADDR`` bind to 0.0.0.0; a socket merely in TIME_WAIT does not."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:  # in use, or a port below 1024: the scan decides
            return False
    return True


def _reached(address: object, port: int) -> bool:
    return (
        isinstance(address, tuple)
        and len(address) == 2
        and address[1] == port
        and address[0] in _REACHED_FROM_LOOPBACK
    )


def _command(pid: int | None) -> str:
    if pid is None:
        return ""
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def _leader(label: str) -> tuple[psutil.Process, tree.Target] | None:
    """The incarnation's tree, found from its leader: the child whose environment carries
    the marker of ``label`` in its run."""
    for child in psutil.Process().children():
        try:
            env = child.environ()
            marker = env.get(INCARNATION_MARKER)
            if marker == incarnation_marker(env.get(RUN_MARKER, ""), label):
                return child, tree.Target(child.pid, marker, child.create_time())
        except psutil.Error:
            continue
    return None


def _listens(proc: psutil.Process, port: int) -> bool:
    try:
        connections = proc.net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(
        conn.status == psutil.CONN_LISTEN and _reached(conn.laddr, port) for conn in connections
    )
