"""A ``cf logs``-like consumer: discovers the logging endpoint from ``/v2/info``, connects through
the LB, decodes envelopes and accounts for every sequence number.

Prints JSON lines: ``{"event": "connected"}`` once the handshake succeeded (tests start the emitter
then), and one ``{"event": "result"}`` at the end. Usable by tests (via ``docker exec``) and by hand:
``python3 -m harness.cf logs --api http://api.sys.example.com --app <guid> --token 'bearer dev'``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from google.protobuf.message import DecodeError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from harness.cf.httpcall import call
from harness.protocol import envelope, multipart
from harness.protocol.delivery import DeliveryLedger
from harness.protocol.retry import Backoff, retryable


#: Every request of one attempt carries this header; routers, the Traffic Controller and the apps record
#: it, so the harness's witness reads the evidence of this attempt and of nothing else.
ATTEMPT_HEADER = "X-Harness-Attempt"
ATTEMPT = os.environ.get("HARNESS_ATTEMPT", "")


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, "attempt": ATTEMPT, **fields}, default=str), flush=True)


def tagged(headers: dict[str, str] | None = None) -> dict[str, str]:
    """``headers`` plus the attempt header (when this run has an attempt id)."""
    return {**(headers or {}), **({ATTEMPT_HEADER: ATTEMPT} if ATTEMPT else {})}


DIAL_TIMEOUT = 5.0  # TCP connect (Go's dialer in noaa has no shorter bound; the CLI's is 30 s)
#: noaa's gorilla Dialer ``HandshakeTimeout: internal.Timeout`` (10 s; cloudfoundry/noaa
#: ``consumer/consumer.go``, ``consumer/internal/timeout.go``): TLS plus the HTTP upgrade.
OPEN_TIMEOUT = 10.0


@dataclass(frozen=True)
class TcpKeepalive:
    """The TCP keepalive noaa's sockets get. noaa dials with ``net.Dial`` (cloudfoundry/noaa
    ``consumer/async.go`` proxyDial), a zero ``net.Dialer``, whose keepalive is on by default:
    idle 15 s, interval 15 s, 9 probes (golang/go ``src/net/dial.go`` defaultTCPKeepAliveIdle,
    defaultTCPKeepAliveInterval, defaultTCPKeepAliveCount). ``idle == 0``: keepalive off."""

    idle: float = 15.0
    interval: float = 15.0
    count: int = 9

    def apply(self, sock: socket.socket) -> None:
        if self.idle <= 0:
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, round(self.idle)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, round(self.interval)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, self.count)


#: Set from ``--tcp-keepalive`` (Go's default unless a test turns it off as a control).
KEEPALIVE = TcpKeepalive()


def ssl_context() -> ssl.SSLContext:
    """Trusts the topology's CA (``HARNESS_CA_PEM``), else the system store."""
    ca = os.environ.get("HARNESS_CA_PEM")
    return ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()


class DiscoveryError(Exception):
    """``/v2/info`` did not answer 200: the client never learns where to dial."""

    def __init__(self, url: str, status: int | None, body: bytes) -> None:
        super().__init__(f"GET {url} answered {status}")
        self.url, self.status, self.body = url, status, body.decode(errors="replace")[:300]


def discover(api: str) -> str:
    """The ``doppler_logging_endpoint`` Cloud Controller advertises (what the CLI dials)."""
    try:
        status, _, body = call(f"{api}/v2/info", headers=tagged(), timeout=10,
                               context=ssl_context() if api.startswith("https:") else None)
    except OSError as exc:
        raise DiscoveryError(f"{api}/v2/info", None, repr(exc).encode()) from exc
    if status != 200:
        raise DiscoveryError(f"{api}/v2/info", status, body)
    return str(json.loads(body)["doppler_logging_endpoint"])


def error_kind(exc: BaseException) -> str:
    """The dial failure of a plain HTTP call, named like ``DialError.kind``."""
    reason = getattr(exc, "reason", exc)  # urllib wraps the socket error in URLError.reason
    if isinstance(reason, ConnectionRefusedError):
        return "connect_refused"
    if isinstance(reason, socket.gaierror):
        return "dns"
    if isinstance(reason, TimeoutError):
        return "connect_timeout"
    return "connect_error"


def header(headers: dict[str, str], name: str) -> str:
    """Case-insensitive lookup: HAProxy, for one, sends header names in lower case."""
    return next((v for k, v in headers.items() if k.lower() == name.lower()), "")


class DialError(Exception):
    """The TCP connection was not established; ``kind`` is dns, connect_refused, connect_timeout or
    connect_error, so a check tells a refused port from a silent one from a handshake that hangs."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


async def dial(host: str, port: int, timeout: float) -> socket.socket:
    """Resolve and connect, each failure named; the handshake then runs on this socket."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except (socket.gaierror, TimeoutError) as exc:
        raise DialError("dns", repr(exc)) from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    KEEPALIVE.apply(sock)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, address), timeout)
    except ConnectionRefusedError as exc:
        sock.close()
        raise DialError("connect_refused", repr(exc)) from exc
    except TimeoutError as exc:
        sock.close()
        raise DialError("connect_timeout", f"no answer to SYN within {timeout:g} s") from exc
    except OSError as exc:
        sock.close()
        raise DialError("connect_error", repr(exc)) from exc
    return sock


@dataclass
class StreamOutcome:
    url: str
    connected: bool = False
    #: None, or where it failed: discovery, dns, connect_refused, connect_timeout, connect_error,
    #: handshake_timeout, handshake_status, handshake_failed.
    error_kind: str | None = None
    handshake_status: int | None = None
    handshake_headers: list[list[str]] = field(default_factory=list)
    handshake_body: str = ""
    error: str | None = None
    close_code: int | None = None
    close_reason: str | None = None
    closed_by: str | None = None  # "server", "client", or None (still open at the end)
    undecodable: int = 0
    connect_ms: float | None = None
    breaks: list[dict[str, object]] = field(default_factory=list)  # streams lost and re-dialled
    #: the kernel's error behind a 1006 (ConnectionResetError: a RST, e.g. drawn by a keepalive probe;
    #: TimeoutError: keepalive probes unanswered), None when the close had another cause
    transport_error: str | None = None
    #: this attempt's local TCP endpoints ("ip:port"): what a PROXY header written for it names
    local_addresses: list[str] = field(default_factory=list)
    #: seconds from the start of the run until the client learned the stream was gone
    closed_at_s: float | None = None
    #: seconds from the start of the run until this stream's handshake succeeded (the re-dial's, on a break)
    connected_at_s: float | None = None


async def consume_retrying(url: str, token: str, ledger: DeliveryLedger, *, duration: float, settle: float,
                           stop_when_complete: bool, seqs: list[int] | None, retries: int) -> StreamOutcome:
    """noaa's ``Stream``/``Firehose`` (``harness.protocol.retry``): after any failure, a broken or
    ended stream or a refused handshake alike, wait (500 ms doubling to 60 s, reset by each
    successful connect) and dial again, at most ``retries`` times (0: noaa's ``*WithoutReconnect``).

    Sequence numbers keep counting across attempts, so the gap a break causes shows up as lost
    ranges in the ledger.
    """
    began = time.monotonic()
    if ledger.origin is None:
        ledger.origin = began  # the timeline's points and the breaks below share this clock
    breaks: list[dict[str, object]] = []
    backoff, redials, addresses = Backoff(), 0, []
    while True:
        outcome = await consume(url, token, ledger, duration=duration - (time.monotonic() - began), settle=settle,
                                stop_when_complete=stop_when_complete, seqs=seqs, began=began)
        addresses += outcome.local_addresses
        if outcome.connected:
            backoff.connected()  # noaa's on-connect callback resets the sleep
            if breaks and "redialled_at_s" not in breaks[-1]:
                breaks[-1]["redialled_at_s"] = outcome.connected_at_s  # the re-dial that ended the last break
        ended = outcome.closed_by == "server" or outcome.error_kind is not None
        if ended and outcome.connected:  # a stream that was up and broke; recorded even with no retries left
            breaks.append({"at_s": round(time.monotonic() - began, 3), "close_code": outcome.close_code,
                           "error": outcome.error, "transport_error": outcome.transport_error,
                           "received_so_far": ledger.received})
            emit("break", **breaks[-1])
        elif ended and breaks:  # a re-dial that failed
            breaks[-1]["failed_redials"] = int(breaks[-1].get("failed_redials", 0)) + 1  # type: ignore[call-overload]
            breaks[-1].setdefault("redial_errors", []).append(  # type: ignore[union-attr]
                outcome.handshake_status or outcome.error_kind)
        delay = backoff.current
        left = duration - (time.monotonic() - began)
        if (not ended or not retryable(outcome.error_kind) or redials >= retries or left <= delay
                or (stop_when_complete and ledger.complete)):
            outcome.breaks, outcome.local_addresses = breaks, addresses
            return outcome
        redials += 1
        await asyncio.sleep(backoff.failed())


async def consume(url: str, token: str, ledger: DeliveryLedger, *, duration: float, settle: float,
                  stop_when_complete: bool, seqs: list[int] | None = None, began: float | None = None) -> StreamOutcome:
    """Read one stream until complete, idle for ``settle`` s after data, ``duration`` s, or closed
    (``began``: the run's start, from which ``closed_at_s`` counts)."""
    outcome = StreamOutcome(url)
    origin = url.replace("wss://", "https://").replace("ws://", "http://").split("/", 3)
    parts = urlsplit(url)
    run_began, began = began, time.monotonic()
    if parts.scheme not in ("ws", "wss"):  # noaa: NonRetryError "Invalid scheme"
        outcome.error, outcome.error_kind = f"Invalid scheme '{parts.scheme}'", "bad_scheme"
        return outcome
    try:
        sock = await dial(parts.hostname or "", parts.port or (443 if parts.scheme == "wss" else 80), DIAL_TIMEOUT)
        outcome.local_addresses.append("%s:%d" % sock.getsockname()[:2])
        async with connect(url, sock=sock, additional_headers=tagged({"Authorization": token}),
                           origin="/".join(origin[:3]),  # type: ignore[arg-type]
                           ssl=ssl_context() if url.startswith("wss") else None, max_size=None,
                           open_timeout=OPEN_TIMEOUT, ping_interval=None, compression=None) as ws:
            outcome.connected = True
            outcome.connect_ms = round((time.monotonic() - began) * 1000, 1)
            outcome.connected_at_s = round(time.monotonic() - (run_began or began), 3)
            emit("connected", url=url, connect_ms=outcome.connect_ms)
            await _read(ws, ledger, outcome, duration - (time.monotonic() - began), settle, stop_when_complete, seqs)
            outcome.closed_at_s = round(time.monotonic() - (run_began or began), 3)
    except DialError as exc:
        outcome.error, outcome.error_kind = f"dial: {exc}", exc.kind
    except InvalidStatus as exc:
        resp = exc.response
        outcome.handshake_status = resp.status_code
        outcome.handshake_headers = [[k, v] for k, v in resp.headers.raw_items()]
        outcome.handshake_body = resp.body.decode(errors="replace") if resp.body else ""
        outcome.error, outcome.error_kind = "websocket: bad handshake", "handshake_status"
    except TimeoutError:
        outcome.error = f"websocket: no handshake answer within {OPEN_TIMEOUT:g} s"
        outcome.error_kind = "handshake_timeout"
    except (InvalidHandshake, OSError) as exc:
        outcome.error, outcome.error_kind = f"websocket: bad handshake ({exc!r})", "handshake_failed"
    return outcome


async def _read(ws, ledger: DeliveryLedger, outcome: StreamOutcome, budget: float, settle: float,  # type: ignore[no-untyped-def]
                stop_when_complete: bool, seqs: list[int] | None) -> None:
    deadline = time.monotonic() + budget
    got_data = False
    while (remaining := deadline - time.monotonic()) > 0:
        wait = min(remaining, settle) if got_data and settle > 0 else remaining
        try:
            async with asyncio.timeout(wait):  # no task per message (wait_for makes one on 3.11)
                message = await ws.recv()
        except TimeoutError:
            if got_data and settle > 0:
                break
            continue
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            outcome.close_code = rcvd.code if rcvd else 1006
            outcome.close_reason = rcvd.reason if rcvd else ""
            outcome.closed_by = "server"
            cause = exc.__cause__ or exc.__context__
            outcome.transport_error = type(cause).__name__ if isinstance(cause, OSError) else None
            return
        got_data = True
        try:
            log = envelope.as_log(envelope.decode(message))
        except DecodeError:
            outcome.undecodable += 1  # noaa skips frames it cannot unmarshal
            continue
        if log and log.seq is not None:
            ledger.record(log.seq, (time.time_ns() - log.emitted_ns) / 1e6, at=time.monotonic())
            if ledger.received == 1:  # a fault scenario waits for this before it strikes
                emit("first_envelope", seq=log.seq)
            if seqs is not None:
                seqs.append(log.seq)
            if stop_when_complete and ledger.complete:
                break
    await ws.close()
    outcome.closed_by = "client"


def _endpoint(args: argparse.Namespace) -> str:
    return args.endpoint or discover(args.api)


def cmd_logs(args: argparse.Namespace) -> None:
    try:
        endpoint = _endpoint(args)
    except DiscoveryError as exc:
        failed = StreamOutcome(exc.url, handshake_status=exc.status, handshake_body=exc.body, error=f"discovery: {exc}",
                               error_kind="discovery")
        emit("result", endpoint=None, outcome=failed.__dict__, delivery=DeliveryLedger(args.expect).summary(), seqs=[])
        return
    path = f"/apps/{args.app}/stream" if args.kind == "logs" else f"/firehose/{args.sub}"
    if args.kind == "firehose":
        path += f"?{args.filter}" if args.filter else "?"  # noaa always appends '?' (+ filter)
    ledger = DeliveryLedger(args.expect)
    seqs: list[int] = []
    outcome = asyncio.run(consume_retrying(endpoint + path, args.token, ledger, duration=args.timeout,
                                           settle=args.settle, stop_when_complete=args.kind == "logs" and args.expect > 0,
                                           seqs=seqs, retries=args.retries))
    emit("result", endpoint=endpoint, outcome=outcome.__dict__, delivery=ledger.summary(),
         seqs=seqs if args.print_seqs else None, timeline=ledger.timeline.as_json())


def cmd_recent(args: argparse.Namespace) -> None:
    try:
        endpoint = _endpoint(args)
    except DiscoveryError as exc:
        emit("result", url=exc.url, status=exc.status, envelopes=0, seqs=[], error=f"discovery: {exc}", body=exc.body,
             error_kind="discovery")
        return
    parts = urlsplit(endpoint)
    scheme = {"wss": "https", "ws": "http"}[parts.scheme]
    url = f"{scheme}://{parts.netloc}/apps/{args.app}/recentlogs"
    seqs: list[int] = []
    error = kind = None
    try:
        status, headers, body = call(url, headers=tagged({"Authorization": args.token}), timeout=10,
                                     context=ssl_context() if scheme == "https" else None)
    except OSError as exc:
        status, headers, body, error, kind = None, {}, b"", f"dial: {exc!r}", error_kind(exc)
    if status == 200:
        try:
            for part in multipart.decode(header(headers, "Content-Type"), body):
                log = envelope.as_log(envelope.decode(part))
                if log and log.seq is not None:
                    seqs.append(log.seq)
        except (ValueError, DecodeError) as exc:
            error = str(exc)
    emit("result", url=url, status=status, envelopes=len(seqs), seqs=seqs, error=error, error_kind=kind,
         body=body[:300].decode(errors="replace") if status != 200 else "")


def cmd_mute(args: argparse.Namespace) -> None:
    """Handshake, then read nothing (no pongs, no data) for ``--seconds``; report what had arrived.

    Built on websockets' sans-I/O ClientProtocol: the pongs it queues are simply never sent,
    which is how a stuck or paused consumer looks to the Traffic Controller.
    """
    import socket

    from websockets.client import ClientProtocol
    from websockets.frames import Close, Opcode
    from websockets.http11 import Response
    from websockets.uri import parse_uri

    url = _endpoint(args) + (f"/apps/{args.app}/stream" if args.app else f"/firehose/{args.sub}?")
    uri = parse_uri(url)
    protocol = ClientProtocol(uri)
    request = protocol.connect()
    request.headers["Authorization"] = args.token
    if ATTEMPT:
        request.headers[ATTEMPT_HEADER] = ATTEMPT
    protocol.send_request(request)
    sock = socket.create_connection((uri.host, uri.port), timeout=10)
    if uri.secure:
        sock = ssl_context().wrap_socket(sock, server_hostname=uri.host)
    sock.sendall(b"".join(protocol.data_to_send()))
    status = None
    counts = {"binary": 0, "ping": 0}
    close: dict[str, object] = {}

    def account(events: list[object]) -> None:
        nonlocal status, close
        for event in events:
            if isinstance(event, Response):
                status = event.status_code
            elif event.opcode == Opcode.BINARY:  # type: ignore[attr-defined]
                counts["binary"] += 1
            elif event.opcode == Opcode.PING:  # type: ignore[attr-defined]
                counts["ping"] += 1
            elif event.opcode == Opcode.CLOSE:  # type: ignore[attr-defined]
                parsed = Close.parse(event.data)  # type: ignore[attr-defined]
                close = {"code": parsed.code, "reason": parsed.reason}

    while status is None:
        protocol.receive_data(sock.recv(65536))
        account(protocol.events_received())
    emit("connected", url=url, status=status)
    time.sleep(args.seconds)
    sock.settimeout(args.drain)
    try:
        while not close:
            data = sock.recv(1 << 20)
            if not data:
                break
            protocol.receive_data(data)
            account(protocol.events_received())
    except (TimeoutError, OSError) as exc:
        close = close or {"error": repr(exc)}
    emit("result", url=url, status=status, frames=counts, close=close)


def cmd_crafted(args: argparse.Namespace) -> None:
    """A handshake written by hand: in ``--split``-byte TCP segments (TCP_NODELAY, a pause between
    writes) and optionally with unusual but legal header casing. Reports the status line."""
    import base64
    import secrets
    import socket

    parts = urlsplit(args.url)
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    upgrade = ("upgrade: WebSocket", "Connection: keep-alive, Upgrade") if args.casing == "odd" else \
        ("Upgrade: websocket", "Connection: Upgrade")
    request = (f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}\r\n{upgrade[0]}\r\n{upgrade[1]}\r\n"
               f"sec-websocket-key: {key}\r\nSEC-WEBSOCKET-VERSION: 13\r\nAuthorization: {args.token}\r\n"
               + (f"{ATTEMPT_HEADER}: {ATTEMPT}\r\n" if ATTEMPT else "") + "\r\n").encode()
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    writes = 0
    for i in range(0, len(request), args.split):
        sock.sendall(request[i:i + args.split])
        writes += 1
        time.sleep(args.pause)
    response = b""
    try:
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(4096)
            if not chunk:
                break
            response += chunk
    except OSError as exc:
        failed = StreamOutcome(args.url, error=repr(exc), error_kind="handshake_failed")
        emit("result", status=None, writes=writes, error=repr(exc), outcome=failed.__dict__, delivery={})
        return
    status_line = response.split(b"\r\n", 1)[0].decode(errors="replace")
    status = int(status_line.split(" ")[1]) if status_line.startswith("HTTP/") else None
    # The same outcome shape as a stream's, so one classification table judges both.
    outcome = StreamOutcome(args.url, connected=status == 101)
    if status != 101:
        outcome.handshake_status, outcome.error = status, f"websocket: bad handshake ({status_line})"
        outcome.error_kind = "handshake_status" if status else "handshake_failed"
    emit("result", status=status, status_line=status_line, writes=writes, request_bytes=len(request), error=None,
         outcome=outcome.__dict__, delivery={})


def cmd_http(args: argparse.Namespace) -> None:
    headers = dict(h.split(":", 1) for h in args.header)
    try:
        status, resp_headers, body = call(args.url, headers=tagged({k: v.strip() for k, v in headers.items()}), timeout=10,
                                          context=ssl_context() if args.url.startswith("https") else None)
    except OSError as exc:
        emit("result", url=args.url, status=None, headers={}, body="", error=f"dial: {exc!r}", error_kind=error_kind(exc))
        return
    try:
        parsed: object = json.loads(body)
    except ValueError:
        parsed = body.decode(errors="replace")
    emit("result", url=args.url, status=status, headers=resp_headers, body=parsed, error=None)


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    if hasattr(args, "tcp_keepalive"):  # else Go's default (the agent resets it before each command)
        global KEEPALIVE
        KEEPALIVE = TcpKeepalive(args.tcp_keepalive, args.tcp_keepalive)
    args.func(args)


@functools.cache
def parser() -> argparse.ArgumentParser:
    """The client commands' parser, built once: the agent builds it before it forks (~3 ms a command
    on the loaded cores, most of it gettext's look-ups for every help string)."""
    parser = argparse.ArgumentParser(prog="harness.cf client")
    sub = parser.add_subparsers(dest="command", required=True)
    for kind in ("logs", "firehose"):
        p = sub.add_parser(kind)
        p.set_defaults(func=cmd_logs, kind=kind)
        p.add_argument("--app", default="")
        p.add_argument("--sub", default="harness-nozzle")
        p.add_argument("--filter", default="", help="firehose filter, e.g. filter-type=logs")
        p.add_argument("--expect", type=int, default=0, help="sequence numbers 0..N-1 the emitter sends")
        p.add_argument("--settle", type=float, default=0, help="stop after this many idle seconds once data came")
        p.add_argument("--print-seqs", action="store_true")
        p.add_argument("--retries", type=int, default=0,
                       help="re-dial after any failure this many times, with noaa's back-off (0: noaa's "
                            "*WithoutReconnect; noaa's Stream/Firehose retry without limit)")
    mute = sub.add_parser("mute")
    mute.set_defaults(func=cmd_mute)
    mute.add_argument("--app", default="")
    mute.add_argument("--sub", default="harness-nozzle")
    mute.add_argument("--seconds", type=float, default=5, help="how long to read nothing")
    mute.add_argument("--drain", type=float, default=5, help="then read for at most this long")
    recent = sub.add_parser("recent")
    recent.set_defaults(func=cmd_recent)
    recent.add_argument("--app", required=True)
    for p in (*sub.choices.values(),):
        p.add_argument("--api", default="http://api.sys.example.com")
        p.add_argument("--endpoint", default="", help="skip /v2/info discovery and dial this")
        p.add_argument("--token", default="")
        p.add_argument("--timeout", type=float, default=30)
    crafted = sub.add_parser("crafted")
    crafted.set_defaults(func=cmd_crafted)
    crafted.add_argument("url")
    crafted.add_argument("--token", default="")
    crafted.add_argument("--split", type=int, default=3, help="bytes per TCP segment")
    crafted.add_argument("--pause", type=float, default=0.002, help="seconds between segments")
    crafted.add_argument("--casing", choices=("normal", "odd"), default="normal")
    http = sub.add_parser("http")
    http.set_defaults(func=cmd_http)
    http.add_argument("url")
    http.add_argument("--header", action="append", default=[])
    for p in (sub.choices["logs"], sub.choices["firehose"]):
        p.add_argument("--tcp-keepalive", type=float, default=TcpKeepalive.idle,
                       help="TCP keepalive idle and interval in s, Go's default 15; 0 turns it off (a control)")
    return parser
