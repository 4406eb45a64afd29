"""Clients of today's log paths, run in the client container like ``harness.cf.client``:

- ``cf-logs``: ``cf logs`` on cf CLI >= 6.50 (v7, v8): finds Log Cache in Cloud Controller's root
  document (``links.log_cache``), then polls it over HTTPS with the CLI's walk
  (``harness.protocol.loggregator_v2.CliWalk``; cloudfoundry/cli ``actor/sharedaction/logging.go``):
  errors retried 5 times 250 ms apart, empty reads retried every 250 ms for ever.
- ``cf-recent``: ``cf logs --recent`` on the same CLIs: one descending read of 1000 log envelopes,
  halving the limit on 429 (``GetRecentLogs``).
- ``v2-nozzle``: a v2 firehose/app nozzle on the RLP gateway (``links.log_stream``):
  ``GET /v2/read?log&source_id=<app>`` (or ``shard_id=`` for the firehose), read as server-sent
  events.

Every request carries the attempt header. Sequence numbers are counted from ``--base`` (the
emitter's ``--start``), so lines other tests left in Log Cache never count. Prints ``connected``
once the path answers 200 (``walking`` once the CLI found the newest envelope) and one ``result``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from harness.cf.client import emit, ssl_context, tagged
from harness.protocol import loggregator_v2 as v2
from harness.protocol.delivery import DeliveryLedger

CLI_RETRIES = 5  # cliRetryBackoff(250 ms, 5): the walk gives up after 5 errors in a row
HTTP_TIMEOUT = 10.0


@dataclass
class HttpOutcome:
    """What the path did, in the shape the classification tables read (``error_kind`` as the
    WebSocket client names them: discovery, dns, connect_refused, connect_timeout, connect_error,
    tls_failed, http_status)."""

    url: str
    connected: bool = False
    status: int | None = None
    error_kind: str | None = None
    error: str | None = None
    requests: int = 0
    connections: int = 0  # TCP connections the reads opened (the CLI keeps one open between reads)
    closed_by: str | None = None  # "server" when the stream ended before the client was done
    events: dict[str, int] = field(default_factory=dict)


def kind_of(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, ConnectionRefusedError):
        return "connect_refused"
    if isinstance(exc, ssl.SSLError):
        return "tls_failed"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "connect_timeout"
    return "connect_error"


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.hostname or "", parts.port or 443, timeout=HTTP_TIMEOUT,
                                           context=ssl_context())
    return http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=HTTP_TIMEOUT)


def get(url: str, token: str) -> tuple[int, bytes]:
    """One GET on a connection of its own (Cloud Controller's root document)."""
    conn = _connection(url)
    try:
        return _get_on(conn, url, token)
    finally:
        conn.close()


def _get_on(conn: http.client.HTTPConnection, url: str, token: str) -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                 headers=tagged({"Authorization": token} if token else {}))
    resp = conn.getresponse()
    body = resp.read()
    if resp.will_close:
        conn.close()
    return resp.status, body


#: What a connection a server closed while it sat idle raises on its next request.
STALE = (http.client.RemoteDisconnected, http.client.BadStatusLine, ConnectionResetError, BrokenPipeError)


class KeptConnections:
    """Connections kept open per origin for the next request, as the cf CLI's Log Cache client
    does: an ``http.Client`` with a Transport of its own, keep-alive on (cloudfoundry/cli
    ``command/v7/shared/new_log_cache_client.go``). A walk's reads then share one TLS session
    instead of a handshake each. Like Go's Transport, a GET that fails on a reused connection the
    server already closed is sent once more on a fresh one (``net/http`` ``transport.go``
    ``shouldRetryRequest``: an idempotent request on a reused connection)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int | None], http.client.HTTPConnection] = {}
        self.opened = 0

    def get(self, url: str, token: str) -> tuple[int, bytes]:
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "", parts.port)
        conn = self._idle.pop(key, None)
        if conn is not None:
            try:
                return self._keep(key, conn, _get_on(conn, url, token))
            except STALE:
                conn.close()
        conn = _connection(url)
        self.opened += 1
        try:
            return self._keep(key, conn, _get_on(conn, url, token))
        except BaseException:
            conn.close()
            raise

    def _keep(self, key: tuple[str, str, int | None], conn: http.client.HTTPConnection,
              answer: tuple[int, bytes]) -> tuple[int, bytes]:
        if conn.sock is not None:  # http.client drops the socket when the answer said Connection: close
            self._idle[key] = conn
        return answer

    def close(self) -> None:
        for conn in self._idle.values():
            conn.close()
        self._idle.clear()


class RootDocumentError(LookupError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def root_link(api: str, name: str) -> str:
    """``links.<name>.href`` of Cloud Controller's root document (how the CLI finds Log Cache)."""
    status, body = get(f"{api}/", "")
    if status != 200:
        raise RootDocumentError(f"GET {api}/ answered {status}", status)
    return str(json.loads(body)["links"][name]["href"])


def _discover(api: str, name: str, outcome: HttpOutcome) -> str | None:
    try:
        return root_link(api, name)
    except (OSError, LookupError, ValueError, KeyError) as exc:
        outcome.error, outcome.error_kind = f"discovery: {exc!r}", "discovery"
        outcome.status = getattr(exc, "status", None)  # the router's 400 to a PROXY header it cannot read
        return None


def _count(ledger: DeliveryLedger, env: dict[str, object], base: int) -> None:
    log = v2.as_log(env)
    if log is not None and log.seq is not None and base <= log.seq < base + ledger.expected:
        ledger.record(log.seq - base, (time.time_ns() - log.timestamp_ns) / 1e6, at=time.monotonic())


def cf_logs(api: str, app: str, token: str, ledger: DeliveryLedger, base: int, timeout: float) -> HttpOutcome:
    """``cf logs`` on CLI >= 6.50: the Log Cache walk until every expected line came or time is up."""
    outcome = HttpOutcome(url="")
    if (endpoint := _discover(api, "log_cache", outcome)) is None:
        return outcome
    outcome.url = f"{endpoint}/api/v1/read/{app}"
    kept = KeptConnections()
    try:
        return _walk(outcome, kept, token, ledger, base, timeout)
    finally:
        kept.close()
        outcome.connections = kept.opened


def _walk(outcome: HttpOutcome, kept: KeptConnections, token: str, ledger: DeliveryLedger, base: int,
          timeout: float) -> HttpOutcome:
    walk, errors, deadline = v2.CliWalk(), 0, time.monotonic() + timeout
    while time.monotonic() < deadline and not (ledger.expected and ledger.complete):
        url = f"{outcome.url}?{walk.next_query().to_query()}"
        outcome.requests += 1
        try:
            status, body = kept.get(url, token)
            outcome.status = status
            batch = v2.batch_of(json.loads(body)) if status == 200 else None
        except (OSError, ssl.SSLError, ValueError) as exc:
            status, batch, outcome.error_kind, outcome.error = None, None, kind_of(exc), repr(exc)
        if batch is None:  # an error: the CLI retries 5 times, 250 ms apart, then gives up
            errors += 1
            if status is not None:
                outcome.error_kind = "http_status"
                outcome.error = f"Failed to retrieve logs from Log Cache: unexpected status code {status}"
            if errors >= CLI_RETRIES:
                return outcome
            time.sleep(v2.EMPTY_RETRY_S)
            continue
        errors, outcome.error_kind, outcome.error = 0, None, None
        if not outcome.connected:
            outcome.connected = True
            emit("connected", url=outcome.url)
        was_latest = walk.phase == "latest"
        shown = walk.take(batch, time.time_ns())
        if was_latest and walk.phase == "walk":
            emit("walking", start_ns=walk.start_ns)
        for env in shown:
            _count(ledger, env, base)
        if not shown:
            time.sleep(v2.EMPTY_RETRY_S)
    return outcome


def cf_recent(api: str, app: str, token: str, ledger: DeliveryLedger, base: int) -> HttpOutcome:
    """``cf logs --recent`` on CLI >= 6.50: newest 1000 log lines, the limit halved on 429."""
    outcome = HttpOutcome(url="")
    if (endpoint := _discover(api, "log_cache", outcome)) is None:
        return outcome
    outcome.url = f"{endpoint}/api/v1/read/{app}"
    limit = v2.RECENT_LINES
    while limit >= 1:
        query = v2.ReadQuery(limit=limit, types=("log",), descending=True).to_query()
        outcome.requests += 1
        try:
            status, body = get(f"{outcome.url}?{query}", token)
        except (OSError, ssl.SSLError) as exc:
            outcome.error_kind, outcome.error = kind_of(exc), repr(exc)
            return outcome
        outcome.status = status
        if status != 429:
            break
        limit //= 2
    if status != 200:
        outcome.error_kind = "http_status"
        outcome.error = f"Failed to retrieve logs from Log Cache: unexpected status code {status}"
        return outcome
    outcome.connected = True
    for env in reversed(v2.batch_of(json.loads(body))):  # the CLI shows them oldest first
        _count(ledger, env, base)
    return outcome


def v2_nozzle(api: str, app: str, shard: str, token: str, ledger: DeliveryLedger, base: int,
              timeout: float, settle: float = 0) -> HttpOutcome:
    """Read the RLP gateway's server-sent events until every expected line came, time is up, or
    (``settle`` > 0) no envelope came for ``settle`` s after the first: an LB that holds the tail
    back (response buffering) then shows as such in seconds, not at the timeout."""
    outcome = HttpOutcome(url="")
    if (endpoint := _discover(api, "log_stream", outcome)) is None:
        return outcome
    selector = f"source_id={quote(app)}" if app else f"shard_id={quote(shard)}"
    outcome.url = f"{endpoint}/v2/read?log&{selector}"
    parts = urlsplit(outcome.url)
    conn = _connection(outcome.url)
    deadline = time.monotonic() + timeout
    try:
        conn.request("GET", f"{parts.path}?{parts.query}", headers=tagged({"Authorization": token} if token else {}))
        # A streaming client waits for the answer as long as it reads (Go's http.Client has no
        # default timeout): a proxy that holds the headers back shows as a late or missing stream.
        sock = conn.sock  # http.client drops it from ``conn`` when the answer says Connection: close
        emit("requesting", url=outcome.url)
        sock.settimeout(max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
        try:
            resp = conn.getresponse()
        except (TimeoutError, socket.timeout) as exc:
            outcome.error_kind, outcome.error = "response_timeout", f"no response headers within {timeout:g} s"
            raise _Done() from exc
        outcome.status, outcome.requests = resp.status, 1
        if resp.status != 200:
            outcome.error_kind, outcome.error = "http_status", resp.read()[:300].decode(errors="replace")
            return outcome
        outcome.connected = True
        emit("connected", url=outcome.url)
        parser = v2.SseParser()
        last_message: float | None = None
        while time.monotonic() < (end := _read_until(deadline, last_message, settle)) \
                and not (ledger.expected and ledger.complete):
            # Heartbeats (every 5 s) wake an idle read; a timeout ends the read (http.client cannot
            # resume a chunked body after one).
            sock.settimeout(max(0.1, end - time.monotonic()))  # type: ignore[union-attr]
            try:
                chunk = resp.read1(65536)
            except (TimeoutError, socket.timeout):
                break
            if not chunk:
                outcome.closed_by = "server"
                break
            for event in parser.feed(chunk):
                outcome.events[event.event] = outcome.events.get(event.event, 0) + 1
                if event.event == "message":
                    last_message = time.monotonic()
                    for env in v2.batch_of(json.loads(event.data)):
                        _count(ledger, env, base)
    except _Done:
        pass
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        outcome.error_kind, outcome.error = kind_of(exc), repr(exc)
        if outcome.connected:
            outcome.closed_by = "server"
    finally:
        conn.close()
    return outcome


def _read_until(deadline: float, last_message: float | None, settle: float) -> float:
    """When the read ends: the deadline, or ``settle`` s after the last envelope once one came."""
    if settle > 0 and last_message is not None:
        return min(deadline, last_message + settle)
    return deadline


class _Done(Exception):
    """The outcome already says why the read ended."""


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="harness.cf v2 clients")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("cf-logs", "cf-recent", "v2-nozzle"):
        p = sub.add_parser(name)
        p.add_argument("--api", default="http://api.sys.example.com")
        p.add_argument("--app", default="", help="source id (app GUID)")
        p.add_argument("--shard", default="harness-v2-nozzle", help="v2-nozzle without --app: the firehose shard")
        p.add_argument("--token", default="")
        p.add_argument("--expect", type=int, default=0, help="sequence numbers base..base+N-1 the emitter sends")
        p.add_argument("--base", type=int, default=0, help="the emitter's first sequence number")
        p.add_argument("--timeout", type=float, default=30)
        p.add_argument("--settle", type=float, default=0, help="v2-nozzle: end N s after the last envelope (0: off)")
        p.add_argument("--print-seqs", action="store_true")
    args = parser.parse_args(argv)
    ledger = DeliveryLedger(args.expect)
    try:
        outcome = _run(args, ledger)
    except Exception as exc:  # a client bug still ends in a result the check can read
        outcome = HttpOutcome(url="", error_kind="client_error", error=repr(exc))
    result: dict[str, Any] = {"endpoint": outcome.url, "outcome": asdict(outcome), "delivery": ledger.summary(),
                              "status": outcome.status, "error_kind": outcome.error_kind, "error": outcome.error}
    if args.print_seqs:
        result["seqs"] = sorted(ledger.seen)
    emit("result", **result)


def _run(args: argparse.Namespace, ledger: DeliveryLedger) -> HttpOutcome:
    if args.command == "cf-logs":
        return cf_logs(args.api, args.app, args.token, ledger, args.base, args.timeout)
    if args.command == "cf-recent":
        return cf_recent(args.api, args.app, args.token, ledger, args.base)
    return v2_nozzle(args.api, args.app, args.shard, args.token, ledger, args.base, args.timeout, args.settle)
