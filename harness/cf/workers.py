"""Reusable command workers of a node's agent: forked children that run one command after another.

A fresh fork per command pays its copy-on-write faults every time: a client command's child
faulted ~2,300 pages (~9 MB: Python's reference counts write to every object a command touches),
about 12 ms of system CPU a command on the loaded cores, and a qualification runs ~1,500 of them.
A worker pays that once and keeps its pages for the next command.

What a command could leave for the next is reset or refused: the environment is restored before
each command (and the agent resets the client's attempt id and TCP keepalive); a worker whose
command left a thread running or a socket open, or that ran ``MAX_COMMANDS``, ends.
Only short commands that nobody signals by pid run in a worker (client kinds and ``python3 -c``
scripts); captures, Scapy peers and servers keep a fork of their own, whose pid is theirs.

Protocol, over an ``AF_UNIX``/``SOCK_SEQPACKET`` pair (message boundaries kept): the agent sends
the request (JSON) with the write end of a new output pipe attached (``SCM_RIGHTS``); the worker
runs it with stdout and stderr on that pipe, closes the pipe (the agent then sees EOF) and answers
``{"exit": code, "again": reusable}``. A worker that dies answers nothing: its socket closes.
"""

from __future__ import annotations

import json
import os
import socket
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, NoReturn

CF = ["python3", "-m", "harness.cf"]
#: The CF image's client kinds: short commands, never signalled by pid.
POOLED_ROLES = frozenset({"logs", "firehose", "recent", "http", "mute", "crafted", "cf-logs", "cf-recent",
                          "v2-nozzle", "frames", "emit"})
#: Idle workers an agent keeps (more end after their command: a burst of parallel runs is rare).
MAX_IDLE = 4
#: Commands a worker runs before it ends (its heap drifts from the agent's with every one).
MAX_COMMANDS = 50
#: A larger request (a long script) goes to a fork of its own: one message of a SOCK_SEQPACKET pair
#: must also fit the socket's send buffer (~200 KB by default; a send that fails forks too).
REQUEST_MAX = 128 << 10
#: How long a worker told to end may take before it is killed.
REAP_S = 5.0


def poolable(argv: list[str]) -> bool:
    """Whether a worker may run ``argv``: a client kind of the CF image or a ``python3 -c`` script."""
    return (argv[:3] == CF and len(argv) > 3 and argv[3] in POOLED_ROLES) or \
        (argv[:2] == ["python3", "-c"] and len(argv) == 3)


@dataclass(eq=False)
class Worker:
    """The agent's handle on one worker: its pid, its socket, the run it is on."""

    pid: int
    sock: socket.socket
    run: dict[str, Any] | None = None  # the agent's state of the command it runs
    again: bool = False  # it said it takes another command
    closed: bool = False  # the agent let it go (its socket closed)
    status: int | None = None  # its exit code, once collected
    killed_at: float = 0.0  # when collecting gives up waiting and kills it

    def start(self, request: dict[str, Any]) -> int:
        """Hand the worker ``request``; the read end of the command's output pipe."""
        read_end, write_end = os.pipe()
        try:
            socket.send_fds(self.sock, [json.dumps(request).encode()], [write_end])
        except OSError:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self.again = False
        return read_end

    def answer(self) -> tuple[bool, int | None]:
        """What the worker said: (it is gone, the exit code it sent; None if it sent none)."""
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return False, None
        except OSError:
            data = b""
        if not data:
            return True, None
        message = json.loads(data)
        self.again = bool(message["again"])
        return False, int(message["exit"])

    def close(self) -> None:
        """Close the agent's end: an idle worker ends on that (its next read finds EOF)."""
        self.sock.close()
        self.closed = True
        self.killed_at = time.monotonic() + REAP_S

    def collect(self, wait: bool = False) -> bool:
        """Whether its exit status is in (``status``); with ``wait``, wait for it. One that has not
        ended ``REAP_S`` after it was let go is killed."""
        while self.status is None:
            pid, status = os.waitpid(self.pid, 0 if wait and not self.killed_at else os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
            elif self.killed_at and time.monotonic() > self.killed_at:
                os.kill(self.pid, signal.SIGKILL)
                self.killed_at = 0.0
            elif not wait:
                return False
            else:
                time.sleep(0.005)
        return True


def spawn(run_one: Callable[[list[str]], int], close_in_child: Callable[[], None]) -> Worker:
    """Fork a worker that serves commands with ``run_one`` (``close_in_child``: what of the agent's
    the child must not hold, e.g. its other sockets)."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            mine.close()
            close_in_child()
            serve(theirs, run_one)
        finally:  # whatever went wrong, never back into the agent's own loop
            os._exit(1)
    theirs.close()
    mine.setblocking(False)
    return Worker(pid, mine)


def serve(sock: socket.socket, run_one: Callable[[list[str]], int]) -> NoReturn:
    """The worker's loop: one command per request, until its socket closes or it must end."""
    environ = dict(os.environ)
    devnull_in, devnull_out = os.open(os.devnull, os.O_RDONLY), os.open(os.devnull, os.O_WRONLY)
    for fd, target in ((0, devnull_in), (1, devnull_out), (2, devnull_out)):  # not the agent's own stdio
        os.dup2(target, fd)
    sockets = _sockets()
    for done in range(1, MAX_COMMANDS + 1):
        try:
            data, fds, _, _ = socket.recv_fds(sock, REQUEST_MAX, 1)
        except OSError:
            break
        if not data or not fds:
            break
        request = json.loads(data)
        os.dup2(fds[0], 1)
        os.dup2(fds[0], 2)
        os.close(fds[0])
        os.environ.clear()
        os.environ.update(environ)
        os.environ.update(request.get("env") or {})
        code = run_one(list(request["argv"]))
        os.dup2(devnull_out, 1)  # the pipe's last write end: the agent reads its EOF
        os.dup2(devnull_out, 2)
        again = done < MAX_COMMANDS and threading.active_count() == 1 and _sockets() <= sockets
        try:
            sock.send(json.dumps({"exit": code, "again": again}).encode())
        except OSError:
            break
        if not again:
            break
    os._exit(0)


def _sockets() -> set[str]:
    """The sockets this process holds open (``socket:[inode]``): a command that left one open (a
    connection it never closed) ends its worker, and the exit closes it, as a fork's exit did."""
    held = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            held.add(target)
    return held
