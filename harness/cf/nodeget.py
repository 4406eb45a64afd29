"""``curl -sf URL`` of a node's own endpoint, answered inside the agent's selector loop, not a fork.

The witness reads the routers' and the TC's records with such GETs, several per check, and a
forked child per GET cost ~7 ms of CPU on an idle machine and ~13 ms in a full qualification
(copy-on-write faults of the forked interpreter, its exit): about 70 CPU-s of a run's ~530. Here
the GET is HTTP/1.1 to the node's own address, framed by h11 (sans-I/O) over a non-blocking
socket that the agent's selector drives, so the agent stays single-threaded (safe to fork).

Exit codes as curl's with ``-sf``: 0 with the body, 22 for an HTTP error status (no body), 7 when
nothing answers (refused, reset, a broken reply or no answer within the timeout), 3 for a URL
that is not plain http.
"""

from __future__ import annotations

import errno
import socket
import time
from urllib.parse import SplitResult, urlsplit

import h11

#: curl's exit codes for what a GET can end in (3: not a URL this can fetch, plain http only).
OK, HTTP_ERROR, NO_ANSWER, BAD_URL = 0, 22, 7, 3
#: As the fork's ``urlopen(url, timeout=30)`` was.
TIMEOUT_S = 30.0


class NodeGet:
    """One GET in flight: its socket, what is left to send, and its result once ``exit`` is set."""

    def __init__(self, url: str, timeout: float = TIMEOUT_S) -> None:
        self.deadline = time.monotonic() + timeout
        self.body = bytearray()
        self.exit: int | None = None
        self.conn = h11.Connection(h11.CLIENT)
        parts = urlsplit(url)
        self.sock = socket.socket(socket.AF_INET6 if ":" in (parts.hostname or "") else socket.AF_INET)
        self.sock.setblocking(False)
        self.outgoing, address = self._request(parts)
        if address is None:
            self._end(BAD_URL)
            return
        try:  # the node's own address: an IP literal, so no name lookup blocks the agent
            started = self.sock.connect_ex(address)
        except OSError:
            started = errno.EHOSTUNREACH
        if started not in (0, errno.EINPROGRESS):
            self._end(NO_ANSWER)

    def _request(self, parts: SplitResult) -> tuple[bytes, tuple[str, int] | None]:
        """The request's bytes and where to send them; no address for a URL that is not plain http
        (or has a port that is not a number, or a target h11 refuses)."""
        if parts.scheme != "http" or not parts.hostname:
            return b"", None
        try:
            address = (parts.hostname, parts.port or 80)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            head = self.conn.send(h11.Request(method="GET", target=target,
                                              headers=[("Host", parts.netloc), ("Connection", "close")]))
        except (ValueError, h11.LocalProtocolError):
            return b"", None
        return head + self.conn.send(h11.EndOfMessage()), address

    @property
    def sending(self) -> bool:
        """Still connecting or sending the request (watch for writable), else reading the answer."""
        return bool(self.outgoing) and self.exit is None

    def on_ready(self, *, writable: bool) -> None:
        """The socket is ready: send (more of) the request, or read (more of) the answer."""
        if writable:
            self._send()
        else:
            self._receive()

    def _send(self) -> None:
        if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):  # the connect failed
            return self._end(NO_ANSWER)
        try:
            self.outgoing = self.outgoing[self.sock.send(self.outgoing):]
        except OSError:
            self._end(NO_ANSWER)

    def _receive(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            return self._end(NO_ANSWER)
        try:
            self.conn.receive_data(data)
            self._events()
        except h11.RemoteProtocolError:
            self._end(NO_ANSWER)

    def expire(self, now: float) -> None:
        if self.exit is None and now >= self.deadline:
            self._end(NO_ANSWER)

    def _events(self) -> None:
        while self.exit is None:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.Response) and event.status_code >= 400:
                return self._end(HTTP_ERROR)  # -f: no body
            if isinstance(event, h11.Data):
                self.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return self._end(OK)
            elif isinstance(event, h11.ConnectionClosed):  # closed before the answer was whole
                return self._end(NO_ANSWER)

    def _end(self, code: int) -> None:
        """Done: the owner unregisters and closes the socket once it sees ``exit``."""
        if code != OK:
            self.body.clear()
        self.exit = code
