"""The harness's side of a node's resident agent (``harness.cf.agent``): one ``docker exec`` per
node, kept open, instead of one per command.

Commands and their output travel as JSON lines over the exec's attached stdin/stdout (the Docker
API's multiplexed stream), so this works against a remote engine as ``docker exec`` does. An agent
that died (its container was killed or restarted) fails what was in flight with ``AgentGone``;
callers then fall back to a plain ``docker exec`` and the next command starts a new agent.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import threading
from typing import Any, Iterator

from docker.utils.socket import frames_iter

from harness.cf.agent import CF, handles  # noqa: F401  (handles: what the harness sends to an agent)

#: ``HARNESS_AGENT=0`` turns the agents off: every command is its own ``docker exec`` again.
ENABLED = os.environ.get("HARNESS_AGENT", "1") != "0"


class AgentGone(Exception):
    """The agent's session ended before the command's exit code came."""


class NodeAgent:
    """One node's agent session: start commands, get their output lines and exit codes."""

    _ids = itertools.count()

    def __init__(self, api: Any, container_id: str) -> None:
        exec_id = api.exec_create(container_id, [*CF, "agent"], stdin=True)["Id"]
        self._socket = api.exec_start(exec_id, socket=True)
        self._write_lock = threading.Lock()
        self._runs: dict[str, queue.SimpleQueue[dict[str, Any] | None]] = {}
        self._runs_lock = threading.Lock()
        self.alive = True
        threading.Thread(target=self._read, daemon=True, name=f"agent-{container_id[:12]}").start()

    def start(self, cmd: list[str], env: dict[str, str] | None = None) -> Iterator[str]:
        """Start ``cmd``; iterate its output lines. The iterator ends with the exit code in
        ``StopIteration.value`` (use ``run``/``lines_of`` rather than handling that yourself)."""
        run_id = f"r{next(self._ids)}"
        messages: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        with self._runs_lock:
            if not self.alive:
                raise AgentGone("the agent's session had already ended")
            self._runs[run_id] = messages
        request = json.dumps({"id": run_id, "argv": cmd, "env": env or {}}) + "\n"
        try:
            with self._write_lock:
                self._socket._sock.sendall(request.encode())
        except OSError as exc:
            self._end()
            raise AgentGone(f"could not send to the agent: {exc!r}") from exc
        return _lines(messages)

    def run(self, cmd: list[str]) -> tuple[int, str]:
        """Run ``cmd`` to its end: (exit code, output), as ``exec_run`` returns them."""
        out: list[str] = []
        lines = self.start(cmd)
        while True:
            try:
                out.append(next(lines))
            except StopIteration as done:
                return int(done.value), "\n".join(out)

    def close(self) -> None:
        try:
            self._socket._sock.shutdown(2)
        except OSError:
            pass
        self._socket.close()

    def _read(self) -> None:
        buffer = b""
        try:
            for stream, data in frames_iter(self._socket, tty=False):
                if stream != 1:  # the agent's own stderr (a crash of the agent itself)
                    continue
                *lines, buffer = (buffer + data).split(b"\n")
                for line in lines:
                    message = json.loads(line)
                    with self._runs_lock:
                        target = self._runs.get(message["id"])
                        if "exit" in message:
                            self._runs.pop(message["id"], None)
                    if target is not None:
                        target.put(message)
        except (OSError, ValueError):
            pass
        self._end()

    def _end(self) -> None:
        with self._runs_lock:
            self.alive = False
            runs, self._runs = list(self._runs.values()), {}
        for messages in runs:
            messages.put(None)  # wakes the reader of each unfinished command: AgentGone


def _lines(messages: "queue.SimpleQueue[dict[str, Any] | None]") -> Iterator[str]:
    while True:
        message = messages.get()
        if message is None:
            raise AgentGone("the agent's session ended mid-command (was the container stopped?)")
        if "exit" in message:
            return int(message["exit"])  # type: ignore[return-value]  # the generator's return value
        yield str(message["out"])
