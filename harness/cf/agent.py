"""A resident command runner inside a node of the CF image (``python3 -m harness.cf agent``).

Each ``docker exec`` costs ~60 ms of CPU in the engine (runc, shim, namespaces) and each client
command another ~150 ms of Python start-up and imports; a scenario runs several of both (the
witness's reads of the routers' and TC's records, the client, the emitter), and on 2 cores that
was a large share of the suite's time. The harness starts this agent once per node, over one
``docker exec`` with stdin attached (``harness.agent``), so it works with a remote engine too.

Protocol, one JSON object per line. In: ``{"id": "r1", "argv": [...], "env": {...}}``. Out:
``{"id": "r1", "out": "<a line of the command's stdout+stderr>"}`` ... ``{"id": "r1", "exit": 0}``.
The agent is single-threaded (a selector over stdin and the commands' pipes) so that ``fork`` is
safe; commands run in forked children with the modules already imported:

- ``python3 -m harness.cf <role> ...``: the role's ``main``, as ``python3 -m`` would run it; a
  client kind runs in a reusable worker (``harness.cf.workers``), a capture, a Scapy peer or a
  server in a fork of its own (the harness signals it by its pid);
- ``python3 -c <code>``: the code, as the interpreter would run it, in a reusable worker;
- anything else is ``exec``'d as it is, in a fork of its own.

``curl -sf [-m SECONDS] <url>``, a GET of the node's own endpoint, is not forked: the selector drives
it (``harness.cf.nodeget``), printing the body; exit 22 on an HTTP error, 7 when nothing answers,
as curl does.
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import sys
import time
import traceback
from typing import Any

from harness.cf import workers
from harness.cf.nodeget import TIMEOUT_S, NodeGet

#: Imported once, before the first CF command's fork: what the client, emitter and frames commands need,
#: and what their first name look-up imports (asyncio's getaddrinfo runs in a thread pool; the host
#: name goes through the IDNA codec, which imports unicodedata): ~3 ms a command when each child did.
PRELOAD = ("harness.cf.client", "harness.cf.v2clients", "harness.cf.apps", "harness.cf.frames",
           "concurrent.futures.thread", "encodings.idna")
CF = workers.CF
#: How often the loop looks for the exit of workers it let go (they end within milliseconds).
COLLECT_S = 0.05


def handles(cmd: list[str]) -> bool:
    """The commands ``_command`` runs itself (anything else would only be ``exec``'d): the CF
    image's roles, ``curl -sf [-m SECONDS] URL`` of a node's own endpoint and ``python3 -c CODE``."""
    return cmd[:3] == CF or curl_get(cmd) is not None or (cmd[:2] == ["python3", "-c"] and len(cmd) == 3)


def curl_get(cmd: list[str]) -> tuple[str, float] | None:
    """(URL, timeout) of ``curl -sf URL`` (curl's own limit is none; the fork's was 30 s) or of
    ``curl -sf -m SECONDS URL`` (curl's ``--max-time``, except that 0 here is no time at all, not no
    limit); None for any other command."""
    if cmd[:2] != ["curl", "-sf"]:
        return None
    if len(cmd) == 3:
        return cmd[2], TIMEOUT_S
    if len(cmd) == 5 and cmd[2] == "-m":
        try:
            return cmd[4], float(cmd[3])
        except ValueError:
            return None
    return None


def main(argv: list[str]) -> None:
    Agent().serve()


def preload() -> None:
    """Import the client modules in the agent itself, so every later fork has them (done on the
    first CF command: agents of routers and the TC only ever read their node's records)."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    from harness.cf import apps, client

    client.parser(), apps.emit_parser()  # built once, shared by every fork


class Agent:
    """Reads requests from stdin, runs each in a worker or a fork of its own (a GET of the node's own
    endpoint in the loop), relays their output."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.pending = b""
        self.preloaded = False
        self.gets: dict[NodeGet, str] = {}  # GETs in flight, with their request ids
        self.idle: list[workers.Worker] = []  # workers waiting for a command
        self.ending: list[workers.Worker] = []  # workers let go, their exit status not collected yet
        self.taking = True  # False once the harness closed the session
        os.set_blocking(0, False)
        self.selector.register(0, selectors.EVENT_READ, None)

    def serve(self) -> None:
        while self.selector.get_map():
            for key, events in self.selector.select(self._until_first_deadline()):
                if key.data is None:
                    self._read_requests()
                elif isinstance(key.data, workers.Worker):
                    self._worker_answered(key.data)
                elif isinstance(key.data, NodeGet):
                    key.data.on_ready(writable=bool(events & selectors.EVENT_WRITE))
                    self._settle(key.data)
                else:
                    self._relay(key.fd, key.data)
            now = time.monotonic()
            for get in list(self.gets):
                get.expire(now)
                self._settle(get)
            self._collect()
        self._collect(wait=True)

    def _until_first_deadline(self) -> float | None:
        """Seconds until the first GET in flight times out, or the next look at workers let go
        (None: wait for I/O only)."""
        waits = [get.deadline - time.monotonic() for get in self.gets] + ([COLLECT_S] if self.ending else [])
        return max(0.0, min(waits)) if waits else None

    def _read_requests(self) -> None:
        data = os.read(0, 65536)
        if not data:  # the harness closed the session: finish what runs, take no more
            self.selector.unregister(0)
            self.taking = False
            for worker in list(self.idle):
                self._retire(worker)
            return
        self.pending += data
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            if line.strip():
                self._start(json.loads(line))

    def _start(self, request: dict[str, Any]) -> None:
        argv = list(request["argv"])
        if (url := curl_get(argv)) is not None:
            get = NodeGet(*url)
            self.gets[get] = request["id"]
            self.selector.register(get.sock, selectors.EVENT_WRITE, get)
            return self._settle(get)
        if argv[:3] == CF and not self.preloaded:
            preload()
            self.preloaded = True
            for worker in list(self.idle):  # forked before: they would import it all again, privately
                self._retire(worker)
        if workers.poolable(argv) and len(json.dumps(request)) < workers.REQUEST_MAX:
            return self._start_in_worker(request)
        self._start_in_fork(request)

    def _start_in_fork(self, request: dict[str, Any]) -> None:
        """Run the request in a forked child of its own, which exits with the command's code."""
        read_end, write_end = os.pipe()
        # The child's collector then leaves the agent's (preloaded) objects alone: without it, its
        # first collection writes to every one of them and copies their pages (Python's gc docs,
        # gc.freeze: "avoiding unnecessary copy-on-write in child processes").
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_end)
            self._close_in_child()  # a worker ends when its socket closes: no copy of it may live on here
            _run_child(write_end, list(request["argv"]), dict(request.get("env") or {}))
        os.close(write_end)
        self.selector.register(read_end, selectors.EVENT_READ, {"id": request["id"], "pid": pid, "buffer": b""})

    def _start_in_worker(self, request: dict[str, Any]) -> None:
        """Run the request in an idle worker, or a new one (``harness.cf.workers``)."""
        for _ in range(workers.MAX_IDLE + 1):
            worker = self.idle.pop() if self.idle else self._spawn()
            try:
                read_end = worker.start(request)
            except (BrokenPipeError, ConnectionResetError):  # it ended while idle (EOF not read yet)
                self._retire(worker)
                continue
            except OSError:  # the request does not fit a message, no fd left...: not the worker's fault
                self.idle.append(worker)
                break
            worker.run = {"id": request["id"], "worker": worker, "buffer": b"", "eof": False, "exit": None}
            self.selector.register(read_end, selectors.EVENT_READ, worker.run)
            return
        self._start_in_fork(request)

    def _spawn(self) -> workers.Worker:
        gc.freeze()  # as for a fork per command: the worker's collector leaves the agent's objects alone
        worker = workers.spawn(run_command, self._close_in_child)
        self.selector.register(worker.sock, selectors.EVENT_READ, worker)
        return worker

    def _close_in_child(self) -> None:
        """In a new child: the workers' sockets and the GETs' in flight are the agent's (a worker ends
        when the agent closes its end, a GET's connection when the agent closes it: no other
        process may hold a copy, least of all a worker or a capture that lives on)."""
        for other in self._workers():
            other.sock.close()
        for get in self.gets:
            get.sock.close()

    def _workers(self) -> list[workers.Worker]:
        return [key.data for key in self.selector.get_map().values() if isinstance(key.data, workers.Worker)]

    def _worker_answered(self, worker: workers.Worker) -> None:
        if worker.closed:  # let go earlier in this round of the selector: its event is stale
            return
        gone, code = worker.answer()
        if gone:  # it ended (after its last command, or a command ended the process): its status
            self.selector.unregister(worker.sock)
            worker.close()
            worker.collect(wait=True)
            code = worker.status
            if worker in self.idle:
                self.idle.remove(worker)
        if worker.run is not None and worker.run["exit"] is None and code is not None:
            worker.run["exit"] = code
            self._finish_if_done(worker.run)

    def _finish_if_done(self, run: dict[str, Any]) -> None:
        """A worker's command is over once its output ended and its exit code came: report it, then
        keep the worker for the next command or let it go."""
        if not run["eof"] or run["exit"] is None:
            return
        _send({"id": run["id"], "exit": run["exit"]})
        worker = run["worker"]
        worker.run = None
        if worker.again and not worker.closed and self.taking and len(self.idle) < workers.MAX_IDLE:
            self.idle.append(worker)
        else:
            self._retire(worker)

    def _retire(self, worker: workers.Worker) -> None:
        """Let a worker go: it ends once its socket closes, and is collected in the loop (``_collect``)."""
        if worker in self.idle:
            self.idle.remove(worker)
        if not worker.closed:
            self.selector.unregister(worker.sock)
            worker.close()
            self.ending.append(worker)

    def _collect(self, wait: bool = False) -> None:
        """Collect the exit status of the workers let go (all of them, waiting, with ``wait``)."""
        self.ending = [worker for worker in self.ending if not worker.collect(wait)]

    def _settle(self, get: NodeGet) -> None:
        """Watch the GET for what it waits on next; once it has its exit code, report it as a child's."""
        if get.exit is None:
            self.selector.modify(get.sock, selectors.EVENT_WRITE if get.sending else selectors.EVENT_READ, get)
            return
        self.selector.unregister(get.sock)
        get.sock.close()
        run_id = self.gets.pop(get)
        *lines, last = bytes(get.body).split(b"\n")
        for line in lines + ([last] if last else []):
            _send({"id": run_id, "out": line.decode(errors="replace")})
        _send({"id": run_id, "exit": get.exit})

    def _relay(self, fd: int, state: dict[str, Any]) -> None:
        if data := os.read(fd, 65536):
            *lines, state["buffer"] = (state["buffer"] + data).split(b"\n")
            for line in lines:
                _send({"id": state["id"], "out": line.decode(errors="replace")})
            return
        if state["buffer"]:  # a last line without its newline
            _send({"id": state["id"], "out": state["buffer"].decode(errors="replace")})
        self.selector.unregister(fd)
        os.close(fd)
        if "worker" in state:
            state["eof"] = True
            return self._finish_if_done(state)
        _, status = os.waitpid(state["pid"], 0)
        _send({"id": state["id"], "exit": os.waitstatus_to_exitcode(status)})


def _send(message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    os.set_blocking(1, True)
    while data:
        data = data[os.write(1, data):]


def _run_child(out_fd: int, argv: list[str], env: dict[str, str]) -> None:
    """Run one command with stdout and stderr on ``out_fd``, then exit with its code."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(out_fd)
    os.environ.update(env)
    os._exit(run_command(argv))


def run_command(argv: list[str]) -> int:
    """Run one command in this process (stdout and stderr already where they go): its exit code."""
    code = 1
    _fresh_client_state()
    try:
        code = _command(argv)
    except SystemExit as exc:  # as the interpreter reports it: a message goes to stderr, exit 1
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001  the command's crash is its output, as with python3 -m
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def _command(argv: list[str]) -> int:
    if argv[:3] == CF:
        from harness.cf.__main__ import main as cf_main

        cf_main(argv[3:])
        return 0
    if argv[:2] == ["python3", "-c"] and len(argv) == 3:  # a short script (e.g. the LB reachability check)
        exec(compile(argv[2], "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102  the harness's own code
        return 0
    os.execvp(argv[0], argv)
    return 127  # not reached


def _fresh_client_state() -> None:
    """What the preloaded client modules keep, as a new process would have it for this command: the
    attempt id (read at import; this command's is in env) and the client's TCP keepalive, Go's
    default (a worker's last command may have turned it off; ``frames`` dials through it too)."""
    for name in ("harness.cf.client", "harness.cf.crowd"):
        if (module := sys.modules.get(name)) is not None:
            module.ATTEMPT = os.environ.get("HARNESS_ATTEMPT", "")  # type: ignore[attr-defined]
    if (client := sys.modules.get("harness.cf.client")) is not None:
        client.KEEPALIVE = client.TcpKeepalive()  # type: ignore[attr-defined]
