"""gorouter's TLS listener: TLS inside PROXY.

With ``enable_proxy`` gorouter wraps the raw TCP listener in go-proxyproto and only then in TLS
(cloudfoundry/gorouter ``router/router.go`` serveHTTPS: ``listener = &proxyproto.Listener{...}``
before ``tls.NewListener``), so a PROXY v1 line arrives in clear text ahead of the ClientHello.
Without it, the line is read as a TLS record: the handshake fails and the connection is closed with
no HTTP answer (Go's server writes its "HTTP request to an HTTPS server" 400 only for bytes that
look like an HTTP method, not for ``PROXY``).

asyncio's TLS servers start the handshake on the first byte, so this listener accepts plain TCP,
reads the PROXY line with ``MSG_PEEK`` (taking exactly its bytes off the socket, so the ClientHello
behind it stays intact for the TLS layer), then starts TLS on the socket.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Callable

from harness.protocol import proxy_protocol as pp

#: handler(reader, writer, proxy header or None)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "pp.ProxyHeader | None"], Awaitable[None]]
#: handler for a connection whose TLS handshake failed: (peer ip, first bytes, error)
Failed = Callable[[str, bytes, str], None]
PEEK_BYTES = 256
POLL_S = 0.005
#: gorouter's Go server gives a TLS handshake no deadline of its own (``http.Server`` derives one
#: from ReadTimeout/ReadHeaderTimeout/WriteTimeout, none of which gorouter sets: cloudfoundry/gorouter
#: ``router/router.go``); asyncio needs a bound, so its default. (It was 10 s, the same as the
#: client's open timeout, and a busy machine then let the router's timer win the race the
#: ``fault_timeout`` check judges: the client must give up first.)
HANDSHAKE_TIMEOUT_S = 60.0
_CONNECTIONS: set[asyncio.Task[None]] = set()


async def peek(sock: socket.socket, wanted: Callable[[bytes], bool], timeout: float) -> bytes:
    """The socket's first bytes without taking them off it: as soon as ``wanted(bytes)`` holds, or
    what has arrived when ``timeout`` s have passed or the peer closed."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        try:
            data = sock.recv(PEEK_BYTES, socket.MSG_PEEK)
            if not data or wanted(data):  # b"": the peer closed
                return data
        except BlockingIOError:
            pass
        if time.monotonic() >= deadline:
            return data
        await asyncio.sleep(POLL_S)


def _decided(data: bytes) -> bool:
    try:
        return not isinstance(pp.parse_v1(data), pp.NeedMoreData)
    except pp.ProxyProtocolError:
        return True


async def read_proxy_header(sock: socket.socket) -> pp.ProxyHeader | None:
    """go-proxyproto on a raw socket: an optional v1 line, read within gorouter's 100 ms, taken off
    the socket byte-exactly; raises ProxyProtocolError for a line gorouter refuses."""
    data = await peek(sock, _decided, pp.HEADER_TIMEOUT_S)
    verdict = pp.parse_v1(data)
    if isinstance(verdict, pp.NeedMoreData) and data.startswith(pp.PREFIX):
        raise pp.ProxyProtocolError(f"PROXY v1 line incomplete after {pp.HEADER_TIMEOUT_S * 1000:g} ms")
    if not isinstance(verdict, pp.ProxyHeader):
        return None
    taken = b""
    while len(taken) < verdict.length:  # the line is already in the receive buffer: no waiting
        taken += sock.recv(verdict.length - len(taken))
    return verdict


async def serve(port: int, context: ssl.SSLContext, *, proxy_protocol: Callable[[], bool], handler: Handler,
                failed: Failed) -> None:
    """Accept on ``port`` for ever: PROXY (when ``proxy_protocol()`` says so as a connection is
    accepted: the harness may switch it on a running router), then TLS, then ``handler``."""
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("0.0.0.0", port), reuse_port=False, backlog=512)
    listener.setblocking(False)
    while True:
        conn, addr = await loop.sock_accept(listener)
        # A strong reference until it ends: the loop holds tasks weakly, and StreamReaderProtocol holds
        # its reader weakly, so an unreferenced connection task is garbage that the collector may take
        # mid-stream (asyncio docs, create_task: "save a reference ... to avoid a task disappearing").
        task = asyncio.create_task(_connection(conn, addr[0], context, proxy_protocol(), handler, failed))
        _CONNECTIONS.add(task)
        task.add_done_callback(_CONNECTIONS.discard)


async def _connection(conn: socket.socket, peer: str, context: ssl.SSLContext, proxy_protocol: bool,
                      handler: Handler, failed: Failed) -> None:
    loop = asyncio.get_running_loop()
    conn.setblocking(False)
    try:
        proxy = await read_proxy_header(conn) if proxy_protocol else None
    except pp.ProxyProtocolError as exc:
        failed(peer, await peek(conn, lambda _: True, 0), f"proxy_protocol: {exc}")
        conn.close()
        return
    first = await peek(conn, lambda data: len(data) >= 64, 0.05)  # kept for the record of a failure
    reader = asyncio.StreamReader(limit=2 ** 20)
    try:
        transport, protocol = await loop.connect_accepted_socket(
            lambda: asyncio.StreamReaderProtocol(reader), conn, ssl=context, ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S)
    except (ssl.SSLError, OSError, ConnectionError, TimeoutError) as exc:
        failed(peer, first, f"tls_handshake: {exc!r}")
        conn.close()
        return
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    await handler(reader, writer, proxy)
