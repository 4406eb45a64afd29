"""Router stand-in with gorouter's observable behaviour on the paths the harness exercises.

Routes on Host (port ignored), passes WebSocket upgrades through and then copies bytes both ways,
rewrites forwarding headers like gorouter, answers with gorouter's error format, reads an optional
PROXY v1 header (waiting at most 100 ms) when enabled, on the TLS listener too (TLS inside PROXY),
dials TLS backends (the Traffic Controller) checking their SAN, and serves ``/health`` on a status
port. ``GET /requests`` on the status port lists what the router received: the harness's witness
of what the LB forwarded (``?attempt=``, and ``&source=ip:port`` for failed TLS handshakes).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import h11

from harness.cf import proxytls
from harness.cf.settings import RUNTIME_PATH, env_json, load_runtime, log_event, server_tls_context, set_runtime
from harness.cf.streams import (HeadTooLarge, ResponseEnd, parse_request, parse_status, raw_headers, read_head,
                                relay_body, render_head, splice)
from harness.protocol import headers as hdr
from harness.protocol import proxy_protocol as pp
from harness.protocol.handshake import STATUS_TEXT

STATUS_TEXT_ALL = {**STATUS_TEXT, 502: "Bad Gateway"}
#: The harness's attempt header (harness.cf.client.ATTEMPT_HEADER), found even in bytes h11 cannot parse.
ATTEMPT_RE = re.compile(rb"\r\nX-Harness-Attempt:[ \t]*([\w.-]+)", re.IGNORECASE)
DIAL_TIMEOUT = float(os.environ.get("ROUTER_DIAL_TIMEOUT", "5"))
#: gorouter's ``frontend_idle_timeout`` default: how long a client's idle connection waits for its next request.
FRONTEND_IDLE_TIMEOUT = float(os.environ.get("ROUTER_FRONTEND_IDLE_TIMEOUT", "900"))


def error_response(status: int, router_error: str, message: str) -> bytes:
    """gorouter's error writer: ``<code> <Status Text>: <message>``, X-Cf-Routererror header."""
    text = STATUS_TEXT_ALL.get(status, "Error")
    body = f"{status} {text}: {message}\n".encode()
    head = render_head(f"HTTP/1.1 {status} {text}", [
        ("Content-Type", "text/plain; charset=utf-8"), ("X-Cf-Routererror", router_error),
        ("X-Content-Type-Options", "nosniff"), ("Content-Length", str(len(body))), ("Connection", "close")])
    return head + body


def backend_tls_failure(exc: ssl.SSLError) -> tuple[int, str]:
    """gorouter's answer when the TLS handshake to a backend fails: 503 for a certificate whose SAN
    is not the route's ``server_cert_domain_san``, 526 for an untrusted one, 525 for any other
    handshake failure, each with ``X-Cf-Routererror: endpoint_failure`` (cloudfoundry/gorouter
    ``proxy/round_tripper/error_handler.go``, ``proxy/fails/classifier_group.go``)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code == HOSTNAME_MISMATCH:
            return 503, f"endpoint_failure (backend hostname mismatch: {exc.verify_message})"
        return 526, f"endpoint_failure (untrusted certificate: {exc.verify_message})"
    return 525, f"endpoint_failure (TLS handshake: {exc.reason})"


#: What the harness may set on a running router (``set_runtime``), each name -> its values
RUNTIME_SETTINGS = {"ROUTER_PROXY_PROTOCOL": "true|false"}
#: X509_V_ERR_HOSTNAME_MISMATCH, as Python's ssl module reports it
HOSTNAME_MISMATCH = 62


#: How long a connection whose first bytes cannot be parsed is read on for its attempt header. An LB
#: in TCP mode sends its PROXY v2 header the moment the client connects, before the client's request
#: (HAProxy connects to the server at accept): on a loaded machine the request came 0.2 s later, and
#: a 400 recorded without the attempt id was not that attempt's evidence.
ATTEMPT_WAIT_S = 2.0


async def _until_attempt(reader: asyncio.StreamReader, raw: bytes) -> bytes:
    """``raw`` and what follows it, until the attempt header, the end of a request head past a
    PROXY v2 signature (whose 12 bytes begin with CRLF CRLF), the end of the stream or ATTEMPT_WAIT_S."""
    deadline = asyncio.get_running_loop().time() + ATTEMPT_WAIT_S
    while not ATTEMPT_RE.search(raw) and raw.find(b"\r\n\r\n", 12) == -1:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), deadline - asyncio.get_running_loop().time())
        except (TimeoutError, OSError):
            break
        if not chunk:
            break
        raw += chunk
    return raw


class Router:
    def __init__(self, name: str, routes: dict[str, str], proxy_protocol: bool,
                 backend_tls: dict[str, str] | None = None, backend_ca: str | None = None) -> None:
        self.name, self.routes, self.proxy_protocol = name, routes, proxy_protocol
        #: host -> the SAN its backend's certificate must carry (route_registrar's
        #: ``server_cert_domain_san``); those backends are dialled over TLS and checked
        self.backend_tls = backend_tls or {}
        self.backend_context = ssl.create_default_context(cadata=backend_ca) if backend_ca else None
        self.seen: collections.deque[dict[str, object]] = collections.deque(maxlen=5000)

    async def _proxy_header(self, reader: asyncio.StreamReader) -> tuple[bytes, pp.ProxyHeader | None]:
        data = b""
        deadline = asyncio.get_running_loop().time() + pp.HEADER_TIMEOUT_S
        while True:
            verdict = pp.parse_v1(data)
            if isinstance(verdict, pp.ProxyHeader):
                return data[verdict.length:], verdict
            if isinstance(verdict, pp.NoHeader):
                return data, None
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return data, None
            try:
                chunk = await asyncio.wait_for(reader.read(256), remaining)
            except TimeoutError:
                return data, None
            if not chunk:
                raise EOFError()
            data += chunk

    async def _bad_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer_ip: str,
                           tls: bool, buffered: bytes, error: str) -> None:
        """Record what could not be parsed (the first bytes say why: a PROXY v2 signature, a v1 line
        the router was not told to read) with the attempt id found in the raw bytes, then 400."""
        raw = await _until_attempt(reader, buffered)
        found = ATTEMPT_RE.search(raw)
        record: dict[str, object] = {
            "router": self.name, "ts": time.time(), "peer": peer_ip, "tls": tls, "status": 400,
            "bad_request": error, "first_bytes": raw[:64].hex(), "proxy_v2_signature": raw.startswith(pp.V2_SIGNATURE),
            "proxy_v1_line": raw.startswith(b"PROXY "), "attempt": found.group(1).decode() if found else None,
            "path": None, "upgrade": None}
        self.seen.append(record)
        log_event("router", "bad_request", **record)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     b"Connection: close\r\n\r\n400 Bad Request")
        await writer.drain()

    def set_runtime(self, query: str) -> tuple[int, bytes]:
        """The status listener's ``RUNTIME_PATH`` (the harness's; answered to the container itself
        only): read PROXY headers, or stop reading them, on connections accepted from now on."""
        applied = set_runtime(query, RUNTIME_SETTINGS)
        if isinstance(applied, str):
            log_event("router", "runtime_refused", router=self.name, error=applied)
            return 400, json.dumps({"error": applied}).encode()
        self.proxy_protocol = os.environ["ROUTER_PROXY_PROTOCOL"] == "true"
        log_event("router", "runtime", router=self.name, **applied)
        return 200, json.dumps({"proxy_protocol": self.proxy_protocol}).encode()

    def tls_failed(self, peer_ip: str, first: bytes, error: str) -> None:
        """A connection to the TLS listener that never got to HTTP: its first bytes say why (a PROXY
        line the router does not read, a v2 signature). The attempt id sits inside the TLS it never
        reached, so the record names the client a PROXY v1 line carries (``proxy_source``), which
        the client reports as its own local address."""
        source = None
        if first.startswith(pp.PREFIX) and b"\r\n" in first:
            parts = first.split(b"\r\n", 1)[0].decode("ascii", errors="replace").split(" ")
            source = f"{parts[2]}:{parts[4]}" if len(parts) == 6 else None
        record: dict[str, object] = {
            "router": self.name, "ts": time.time(), "peer": peer_ip, "tls": True, "status": None,
            "tls_handshake_failed": error, "first_bytes": first[:64].hex(),
            "proxy_v2_signature": first.startswith(pp.V2_SIGNATURE), "proxy_v1_line": first.startswith(pp.PREFIX),
            "proxy_source": source, "attempt": None, "path": None, "upgrade": None}
        self.seen.append(record)
        log_event("router", "tls_handshake_failed", **record)

    async def handle_tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         proxy: pp.ProxyHeader | None) -> None:
        """A connection of the TLS listener, TLS done; ``proxy``: the PROXY header read before TLS."""
        await self.handle(reader, writer, tls=True, proxy=proxy)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: bool = False,
                     proxy: pp.ProxyHeader | None = None) -> None:
        peer_ip = writer.get_extra_info("peername")[0]
        try:
            await self._handle(reader, writer, peer_ip, tls, proxy)
        except (EOFError, ConnectionError, OSError):
            pass
        except pp.ProxyProtocolError as exc:
            log_event("router", "proxy_protocol_rejected", peer=peer_ip, error=str(exc))
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer_ip: str,
                      tls: bool, tls_proxy: pp.ProxyHeader | None = None) -> None:
        """One client connection: its requests one after another, as gorouter's Go ``http.Server``
        keeps a client's connection for the next request (``IdleTimeout: FrontendIdleTimeout``,
        900 s by default; cloudfoundry/gorouter ``router/router.go``) until a response must end it."""
        # On the TLS listener the PROXY line comes before TLS and was read there (harness.cf.proxytls).
        use_proxy = self.proxy_protocol and not tls
        buffered, proxy = await self._proxy_header(reader) if use_proxy else (b"", tls_proxy)
        client_ip = proxy.source_ip if proxy else peer_ip
        pending: bytes | None = buffered
        idle_timeout = None  # the first request waits as long as the client takes; a next one, this long
        while pending is not None:  # a client closing its idle connection ends here in an EOFError
            try:
                head, rest = await asyncio.wait_for(read_head(reader, pending), idle_timeout)
            except HeadTooLarge as exc:
                return await self._bad_request(reader, writer, peer_ip, tls, pending, repr(exc))
            idle_timeout = FRONTEND_IDLE_TIMEOUT
            pending = await self._exchange(reader, writer, peer_ip, tls, proxy, client_ip, head, rest)

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer_ip: str,
                        tls: bool, proxy: pp.ProxyHeader | None, client_ip: str, head: bytes,
                        rest: bytes) -> bytes | None:
        """One request and its answer; the bytes the client sent past it when the connection stays
        open for another request, None when it ends."""
        # Go's net/http answers a malformed request with a bare 400 and closes.
        try:
            request = parse_request(head)
        except (h11.RemoteProtocolError, ValueError) as exc:
            await self._bad_request(reader, writer, peer_ip, tls, head + rest, str(exc))
            return None
        received = raw_headers(request)
        method, target = request.method.decode(), request.target.decode("latin-1")
        host = hdr.host_without_port(hdr.get(received, "Host"))
        record: dict[str, object] = {
            "router": self.name, "ts": time.time(), "peer": peer_ip, "tls": tls, "proxy_protocol": proxy.__dict__ if proxy else None,
            "method": method, "path": target, "http_version": request.http_version.decode(), "host": host,
            "headers": received, "upgrade": hdr.is_upgrade(received),
            "attempt": hdr.get(received, "X-Harness-Attempt")}
        self.seen.append(record)
        log_event("router", "request", **record)
        if not host or host == client_ip:
            record["status"] = 400
            writer.write(error_response(400, "empty_host", "Request had empty Host header"))
            await writer.drain()
            return None
        backend = self.routes.get(host)
        if backend is None:
            record["status"] = 404
            writer.write(error_response(404, "unknown_route", f"Requested route ('{host}') does not exist."))
            await writer.drain()
            return None
        request_id = str(uuid.uuid4())
        outgoing = hdr.router_request(received, client_ip=client_ip, tls=tls, request_id=request_id,
                                      now_ms=int(time.time() * 1000))
        record["forwarded_headers"] = outgoing
        backend_host, backend_port = backend.rsplit(":", 1)
        san = self.backend_tls.get(host)
        # Go's tls.Conn.Close sends close_notify and closes the socket at once (golang/go
        # src/crypto/tls/conn.go Close); asyncio would wait up to 30 s for the peer's close_notify
        # first, keeping the TC's side of an ended stream open that long.
        tls_options = ({"ssl": self.backend_context, "server_hostname": san, "ssl_shutdown_timeout": 0.1}
                       if san else {})
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(backend_host, int(backend_port), **tls_options), DIAL_TIMEOUT)
        except ssl.SSLError as exc:
            record["status"], router_error = backend_tls_failure(exc)
            writer.write(error_response(int(record["status"]), router_error,  # type: ignore[call-overload]
                                        "Registered endpoint failed to handle the request."))
            await writer.drain()
            return None
        except (OSError, TimeoutError) as exc:
            record["status"] = 502
            writer.write(error_response(502, f"endpoint_failure ({exc!r})", "Registered endpoint failed to handle the request."))
            await writer.drain()
            return None
        # A request body the client sent after its head (an L7 LB writes them apart) goes up before
        # the router waits for the answer, as gorouter's reverse proxy streams it.
        body_length = int(hdr.get(received, "Content-Length") or 0)
        while len(rest) < body_length and (chunk := await reader.read(body_length - len(rest))):
            rest += chunk
        # Another request may follow on this connection only after a body whose end is known (a
        # length or none; a chunked request body is spliced through and the connection then ends).
        # An upgrade's bytes past its head (frames a client pipelines) go up with it, as before.
        keep_alive = (request.http_version == b"1.1" and not hdr.has_token(received, "Connection", "close")
                      and hdr.get(received, "Transfer-Encoding") is None and not record["upgrade"])
        body, after = (rest[:body_length], rest[body_length:]) if keep_alive else (rest, b"")
        up_writer.write(render_head(f"{method} {target} HTTP/1.1", outgoing) + body)
        await up_writer.drain()
        resp_head, resp_rest = await read_head(up_reader)
        status, resp_headers = parse_status(resp_head)
        record["status"] = status
        log_event("router", "response", router=self.name, path=target, status=status)
        if hdr.get(resp_headers, "X-Vcap-Request-Id") is None:
            resp_headers.append(("X-Vcap-Request-Id", request_id))
        end = ResponseEnd(request.method)
        end.feed(resp_head)
        keep_alive = keep_alive and status != 101 and not end.close_delimited and not end.broken
        if status != 101 and not keep_alive:
            resp_headers = hdr.replace(resp_headers, "Connection", "close")
        status_line = resp_head.split(b"\r\n", 1)[0].decode("latin-1")
        writer.write(render_head(status_line, resp_headers) + resp_rest)
        await writer.drain()
        if keep_alive:
            end.feed(resp_rest)
            return await relay_body(reader, writer, (up_reader, up_writer), end, after)
        # gorouter's ForwardIO returns as soon as either copy ends and the caller closes both
        # connections: no half-close (cloudfoundry/gorouter handler/forwarder.go). A half-close
        # with a grace period kept TLS clients waiting for a close that never came.
        await splice((reader, writer), (up_reader, up_writer), grace=0)
        return None


def serve_status(router: Router, port: int) -> ThreadingHTTPServer:
    """Status listener: ``/health`` for LB health checks, ``/requests`` and ``RUNTIME_PATH`` for
    the harness (in a thread; the server is returned to be shut down)."""

    class Status(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            status = 200
            if self.path == "/health":
                body, ctype = b"ok\n", "text/plain; charset=utf-8"
            elif urlsplit(self.path).path == RUNTIME_PATH and self.client_address[0] == "127.0.0.1":
                status, body = router.set_runtime(urlsplit(self.path).query)
                ctype = "application/json"
            elif self.path.startswith("/requests"):
                query = parse_qs(urlsplit(self.path).query)
                wanted, sources = query.get("attempt"), query.get("source") or []
                records = [r for r in list(router.seen) if not wanted or r.get("attempt") in wanted
                           or (r.get("proxy_source") and r.get("proxy_source") in sources)]
                body, ctype = json.dumps(records).encode(), "application/json"
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Cache-Control", "private, max-age=0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("0.0.0.0", port), Status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def main() -> None:
    load_runtime()
    router = Router(os.environ.get("ROUTER_NAME", "router"), env_json("ROUTER_ROUTES", {}),  # type: ignore[arg-type]
                    os.environ.get("ROUTER_PROXY_PROTOCOL", "false") == "true",
                    env_json("ROUTER_BACKEND_TLS", {}), os.environ.get("ROUTER_BACKEND_CA"))  # type: ignore[arg-type]
    port, status_port = int(os.environ.get("ROUTER_PORT", "80")), int(os.environ.get("ROUTER_STATUS_PORT", "8080"))
    serve_status(router, status_port)
    servers = [await asyncio.start_server(router.handle, "0.0.0.0", port)]
    tls_port = None
    if pem := os.environ.get("ROUTER_TLS_PEM"):
        ctx = server_tls_context(pem, "/tmp/router.pem")
        tls_port = int(os.environ.get("ROUTER_TLS_PORT", "443"))
        tls_server = proxytls.serve(tls_port, ctx, proxy_protocol=lambda: router.proxy_protocol,
                                    handler=router.handle_tls, failed=router.tls_failed)
    log_event("router", "listening", port=port, tls_port=tls_port, status_port=status_port, routes=router.routes,
              proxy_protocol=router.proxy_protocol)
    await asyncio.gather(*(server.serve_forever() for server in servers), *([tls_server] if tls_port else []))
