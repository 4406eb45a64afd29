"""Frame-fidelity scenarios on the CF path: the Traffic Controller's side (served at
``/harness/frames/<scenario>``) and the client's side (``python3 -m harness.cf frames``).

Both sides follow ``harness.protocol.frames.Script`` for the attempt id, so what one sent and what
the other received can be compared. The TC side records what it received as events of the attempt
(``frames_received``, ``frames_pongs``, ``frames_closed``) for the witness; the client prints its
own record. The client speaks through websockets' sans-I/O ``ClientProtocol`` over a plain socket,
so it sees every frame (fragments and control frames as they come) and can write data in the same
write as its handshake request.

``?mangle=1`` on the TC path makes the TC deviate from the script (a changed byte, a changed ping,
close code 1001, the pipelined message dropped): the negative controls that make each judgement
report its own failure.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qs, urlsplit

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from harness.protocol import envelope
from harness.protocol.frames import DONE, PATH_PREFIX, SCENARIOS, Script, digest, log_line

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

#: Bound on each wait of a script step (a frame, a pong, the client's "done"), either side.
STEP_TIMEOUT = 10.0
ATTEMPT_HEADER = "X-Harness-Attempt"
Event = Callable[..., None]


def scenario_of(path: str) -> tuple[str, bool] | None:
    """(scenario, mangle) for a frames path, None for any other path or an unknown scenario."""
    parts = urlsplit(path)
    name = parts.path.removeprefix(PATH_PREFIX)
    if not parts.path.startswith(PATH_PREFIX) or name not in SCENARIOS:
        return None
    return name, parse_qs(parts.query).get("mangle") == ["1"]


# ---- the Traffic Controller's side -----------------------------------------------------------------


async def serve(ws: "ServerConnection", attempt: str | None, event: Event) -> None:
    """Run the TC side of the scenario the handshake's path names, as events of ``attempt``."""
    assert ws.request is not None
    chosen = scenario_of(ws.request.path)
    if chosen is None:
        await ws.close(1011, "unknown frames scenario")
        return
    name, mangle = chosen
    script = Script(name, attempt or "")
    event("frames_open", attempt, scenario=name)  # the witness waits for its frames_closed
    try:
        async with asyncio.timeout(STEP_TIMEOUT * 3):
            await _run(ws, script, mangle, attempt, event)
    except (ConnectionClosed, TimeoutError) as exc:
        event("frames_aborted", attempt, scenario=name, error=repr(exc))
    finally:
        rcvd = ws.protocol.close_rcvd
        event("frames_closed", attempt, scenario=name, code=rcvd.code if rcvd else None,
              reason=rcvd.reason if rcvd else None)


async def _run(ws: "ServerConnection", script: Script, mangle: bool, attempt: str | None, event: Event) -> None:
    name = script.scenario
    waiters = []
    if name == "fragments":
        first, middle, last = script.server_fragments
        if mangle:
            middle = bytes([middle[0] ^ 0x01])
        for i, (data, fin) in enumerate(((first, False), (middle, False), (last, True))):
            async with ws.send_context():
                if i == 0:
                    ws.protocol.send_binary(data, fin=fin)
                else:
                    ws.protocol.send_continuation(data, fin=fin)
            if i < 2:
                waiters.append(await ws.ping(script.server_pings[i]))
    elif name == "pingpong":
        waiters.append(await ws.ping(b"x" + script.server_pings[0][1:] if mangle else script.server_pings[0]))
    if waiters:
        done, _ = await asyncio.wait(waiters, timeout=STEP_TIMEOUT)
        event("frames_pongs", attempt, scenario=name, answered=len(done) == len(waiters))
    if name in ("fragments", "pipelined", "casing"):
        if mangle and name == "pipelined":  # the control: as if the bytes behind the handshake were lost
            await ws.recv()
        try:
            message = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT if not mangle else 2)
        except TimeoutError:
            message = None
        first = digest(message if isinstance(message, bytes) else message.encode()) if message is not None else None
        event("frames_received", attempt, scenario=name, first_message=first)
        if name == "casing" and message is not None:
            await ws.send(message)
        if message == DONE:  # the pipelined control dropped the data: "done" came first
            return await _close(ws, script, mangle)
    while (await ws.recv()) != DONE:
        pass
    await _close(ws, script, mangle)


async def _close(ws: "ServerConnection", script: Script, mangle: bool) -> None:
    code, reason = script.close
    await ws.close(1001 if mangle and script.scenario.startswith("close-") else code, reason)


# ---- the client's side -----------------------------------------------------------------------------


class FramesClient:
    """One scenario's client over a socket, recording every frame it receives."""

    def __init__(self, url: str, script: Script, *, token: str, attempt: str, casing: str) -> None:
        self.uri = parse_uri(url)
        self.script, self.token, self.attempt, self.casing = script, token, attempt, casing
        self.protocol = ClientProtocol(self.uri, max_size=None)
        self.sock: socket.socket | Any = None
        self.status: int | None = None
        self.response: Response | None = None
        self.frames: list[dict[str, Any]] = []
        self.messages: list[bytes] = []
        self.partial = b""
        self.pong: str | None = None
        self.close: dict[str, Any] | None = None
        self.eof = False

    def handshake_bytes(self) -> bytes:
        request = self.protocol.connect()
        if self.token:
            request.headers["Authorization"] = self.token
        if self.attempt:
            request.headers[ATTEMPT_HEADER] = self.attempt
        if self.casing != "normal":  # legal variants other LBs have mishandled (RFC 6455 4.1, 4.2.1)
            del request.headers["Upgrade"], request.headers["Connection"]
            request.headers["Upgrade"] = "WebSocket"
            # The control: no 'Upgrade' token at all, which the TC must refuse (gorilla: 400).
            request.headers["Connection"] = "keep-alive, Upgrade" if self.casing == "odd" else "keep-alive"
        self.protocol.send_request(request)
        data = b"".join(self.protocol.data_to_send())
        if self.script.scenario == "pipelined":  # in the same write as the request, before any 101
            data += Frame(Opcode.BINARY, self.script.pipelined).serialize(mask=True, extensions=[])
        return data

    def open(self, dial: Callable[[str, int], Any]) -> None:
        self.sock = dial(self.uri.host, self.uri.port)
        self.sock.sendall(self.handshake_bytes())
        while self.status is None and not self.eof:
            self.pump()

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def pump(self) -> None:
        """Read once, account for every event, and send what the protocol queued (pongs, close echo)."""
        try:
            data = self.sock.recv(1 << 20)
        except (TimeoutError, OSError):
            data = b""
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
            self.eof = True
        for ev in self.protocol.events_received():
            if isinstance(ev, Response):
                self.response, self.status = ev, ev.status_code
            else:
                self._frame(ev)
        self.flush()

    def _frame(self, frame: Frame) -> None:
        op = frame.opcode.name.lower()
        record: dict[str, Any] = {"op": op, "fin": frame.fin, "len": len(frame.data)}
        if frame.opcode in (Opcode.PING, Opcode.PONG):
            record["data"] = bytes(frame.data).decode(errors="replace")
        if frame.opcode is Opcode.PONG:
            self.pong = record["data"]
        if frame.opcode is Opcode.CLOSE:
            close = Close.parse(frame.data)
            self.close = {"code": close.code, "reason": close.reason}
        if frame.opcode in (Opcode.BINARY, Opcode.TEXT, Opcode.CONT):
            self.partial += frame.data
            if frame.fin:
                self.messages.append(self.partial)
                self.partial = b""
        self.frames.append(record)

    def until(self, done: Callable[[], bool], timeout: float = STEP_TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        while not done() and not self.eof and time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            self.pump()
        return done()

    def play(self) -> None:
        """The client's part of the script, then wait for TC's close and the end of the connection."""
        name, script = self.script.scenario, self.script
        if name == "fragments":
            self.until(lambda: len(self.messages) >= 1)
            first, last = script.client_fragments
            self.protocol.send_binary(first, fin=False)
            self.protocol.send_ping(script.client_ping)
            self.protocol.send_continuation(last, fin=True)
            self.flush()
        elif name == "pingpong":
            self.protocol.send_ping(script.client_ping)
            self.flush()
        elif name == "casing":
            self.protocol.send_binary(script.pipelined)
            self.flush()
            self.until(lambda: len(self.messages) >= 1)
        if name in ("fragments", "pingpong"):
            self.until(lambda: self.pong is not None)
        if not self.eof and self.close is None:
            self.protocol.send_text(DONE.encode())
            self.flush()
        self.until(lambda: self.eof)

    def record(self) -> dict[str, Any]:
        return {"scenario": self.script.scenario, "status": self.status, "frames": self.frames,
                "message": digest(self.messages[0]) if self.messages else None,
                "echo": digest(self.messages[0]) if self.script.scenario == "casing" and self.messages else None,
                "pong": self.pong, "close": self.close}


def big_log_line(client: FramesClient, seq: int, say: Callable[..., None]) -> dict[str, Any]:
    """Read one app stream until the envelope of ``seq`` came, then close 1000 ourselves."""
    say("connected", url=str(client.uri), status=client.status)
    found: dict[str, Any] = {"line_bytes": None, "line_ok": False}

    def arrived() -> bool:
        for message in client.messages:
            log = envelope.as_log(envelope.decode(message))
            if log is not None and log.seq == seq:
                found.update(line_bytes=len(log.message), line_ok=log.message == log_line(seq),
                             message=digest(log.message))
                return True
        return False

    client.until(arrived, STEP_TIMEOUT * 3)
    if not client.eof:
        client.protocol.send_close(1000, "")
        client.flush()
        client.until(lambda: client.eof, 3)
    return found


def cmd_frames(args: argparse.Namespace) -> None:
    from harness.cf import client as cf

    try:
        endpoint = args.endpoint or cf.discover(args.api)
    except cf.DiscoveryError as exc:
        failed = cf.StreamOutcome(exc.url, handshake_status=exc.status, error=f"discovery: {exc}",
                                  error_kind="discovery")
        cf.emit("result", outcome=failed.__dict__, record={}, delivery={})
        return
    big = args.scenario == "log-line"
    path = f"/apps/{args.app}/stream" if big else f"{PATH_PREFIX}{args.scenario}" + ("?mangle=1" if args.mangle else "")
    url = endpoint + path
    client = FramesClient(url, Script(args.scenario, cf.ATTEMPT), token=args.token, attempt=cf.ATTEMPT,
                          casing=args.casing)
    outcome = cf.StreamOutcome(url)

    def dial(host: str, port: int) -> Any:
        sock = asyncio.run(cf.dial(host, port, cf.DIAL_TIMEOUT))
        sock.setblocking(True)
        sock.settimeout(cf.OPEN_TIMEOUT)
        return cf.ssl_context().wrap_socket(sock, server_hostname=host) if client.uri.secure else sock

    record: dict[str, Any] = {}
    try:
        client.open(dial)
    except cf.DialError as exc:
        outcome.error, outcome.error_kind = f"dial: {exc}", exc.kind
    except (TimeoutError, OSError) as exc:
        outcome.error, outcome.error_kind = f"websocket: no handshake answer ({exc!r})", "handshake_timeout"
    if client.status == 101:
        outcome.connected = True
        record = big_log_line(client, args.seq, cf.emit) if big else (client.play() or {})
    elif client.status is not None:
        outcome.handshake_status, outcome.error, outcome.error_kind = \
            client.status, "websocket: bad handshake", "handshake_status"
        if client.response is not None:
            outcome.handshake_headers = [[k, v] for k, v in client.response.headers.raw_items()]
    elif outcome.error_kind is None:
        outcome.error, outcome.error_kind = "connection closed before a handshake answer", "handshake_failed"
    outcome.close_code = (client.close or {}).get("code")
    cf.emit("result", outcome=outcome.__dict__, record={**client.record(), **record}, delivery={})


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="harness.cf frames", description="one frame-fidelity scenario against the "
                                "Traffic Controller (harness.protocol.frames)")
    p.add_argument("--scenario", required=True, choices=("log-line", *SCENARIOS))
    p.add_argument("--api", default="http://api.sys.example.com")
    p.add_argument("--endpoint", default="", help="skip /v2/info discovery and dial this (ws[s]://host:port)")
    p.add_argument("--app", default="", help="log-line: the app whose stream carries the line")
    p.add_argument("--seq", type=int, default=0, help="log-line: the sequence number of the line to wait for")
    p.add_argument("--token", default="")
    p.add_argument("--casing", choices=("normal", "odd", "no-upgrade-token"), default="normal")
    p.add_argument("--mangle", action="store_true", help="ask the TC to deviate from the script (negative control)")
    cmd_frames(p.parse_args(argv))
