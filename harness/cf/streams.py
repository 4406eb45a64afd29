"""Byte-level plumbing shared by the router and the ELB-like proxy: read a head, splice two sockets."""

from __future__ import annotations

import asyncio

import h11

MAX_HEAD = 1024 * 1024  # gorouter's max_header_kb default: 1 MiB


class HeadTooLarge(Exception):
    pass


async def read_head(reader: asyncio.StreamReader, buffered: bytes = b"") -> tuple[bytes, bytes]:
    """Read up to the blank line ending an HTTP head; return (head, bytes already read past it)."""
    data = buffered
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD:
            raise HeadTooLarge()
        chunk = await reader.read(65536)
        if not chunk:
            raise EOFError("connection closed before the end of the HTTP head")
        data += chunk
    end = data.index(b"\r\n\r\n") + 4
    return data[:end], data[end:]


def parse_request(head: bytes) -> h11.Request:
    """Parse a request head with h11 (raises h11.RemoteProtocolError on a malformed one)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head)
    event = conn.next_event()
    if not isinstance(event, h11.Request):
        raise h11.RemoteProtocolError("incomplete request head")
    return event


def raw_headers(request: h11.Request | h11.Response) -> list[tuple[str, str]]:
    """Headers with the sender's casing, as they crossed the wire."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw_items()]


def parse_status(head: bytes) -> tuple[int, list[tuple[str, str]]]:
    """Status code and headers of a response head (lenient: whatever the backend sent)."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [tuple(line.split(":", 1)) for line in lines[1:] if ":" in line]
    return status, [(k, v.strip()) for k, v in headers]  # type: ignore[misc]


class ResponseEnd:
    """Where a relayed response ends, told by h11 while its raw bytes go through untouched (sans-I/O).

    A proxy that keeps the client's connection for the next request must know where the backend's
    answer ends: after ``Content-Length`` bytes, at the last chunk, at once (HEAD, 204, 304), or only
    when the backend closes (``close_delimited``: then the client's connection must close too)."""

    def __init__(self, method: bytes) -> None:
        self._head_only = method == b"HEAD"
        self._conn = h11.Connection(h11.CLIENT)
        self._conn.send(h11.Request(method=method, target=b"/", headers=[(b"Host", b"backend")]))
        self._conn.send(h11.EndOfMessage())
        self.complete = False
        self.broken = False  # the backend broke its own framing (or closed early): close the client's side
        self.close_delimited = False

    def feed(self, data: bytes) -> bool:
        """Bytes the backend sent; True once the response is complete."""
        return self._receive(data) if data else self.complete

    def closed(self) -> bool:
        """The backend closed its connection; True if that completed the response (no length)."""
        return self._receive(b"")

    def _receive(self, data: bytes) -> bool:
        if self.complete or self.broken:
            return self.complete
        try:
            self._conn.receive_data(data)
            while (event := self._conn.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
                if isinstance(event, h11.Response):
                    self.close_delimited = not (self._head_only or _framed(event))
                elif isinstance(event, h11.EndOfMessage):
                    self.complete = True
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    break
        except h11.ProtocolError:
            self.broken = True
        return self.complete

    @property
    def reusable(self) -> bool:
        """Whether the client's connection may carry another request after this response."""
        return self.complete and not self.close_delimited and not self.broken


def _framed(response: h11.Response) -> bool:
    """The response says where it ends (no body, a length, chunks) rather than at the backend's close."""
    if response.status_code in (204, 304) or 100 <= response.status_code < 200:
        return True
    names = {name.lower() for name, _ in response.headers}
    return b"content-length" in names or b"transfer-encoding" in names


def render_head(start_line: str, headers: list[tuple[str, str]]) -> bytes:
    return (start_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("latin-1")


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle: "IdleClock | None") -> bool:
    """Copy until EOF (then half-close: True) or a reset/error (False: tear the pair down)."""
    try:
        while chunk := await reader.read(65536):
            if idle:
                idle.touch()
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        return True
    except (ConnectionError, OSError):
        return False


class IdleClock:
    """Last time data moved in either direction, for an LB-style idle timeout."""

    def __init__(self) -> None:
        self.last = asyncio.get_running_loop().time()

    def touch(self) -> None:
        self.last = asyncio.get_running_loop().time()

    async def expired(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        while (remaining := self.last + timeout - loop.time()) > 0:
            await asyncio.sleep(remaining)


async def splice(a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 *, idle_timeout: float | None = None, grace: float = 10.0) -> str:
    """Copy both ways with half-close; a reset on either side tears both down, as an LB does.
    Return why it ended: "eof", "reset" or "idle_timeout".

    A side that cannot be half-closed (a TLS connection: asyncio's SSL transport has no
    ``write_eof``) is closed with the other once the copy to it reached EOF: otherwise a client
    behind a TLS listener never learns that the backend closed (a WebSocket client then waits out its
    close timeout, 10 s, for the TCP close that follows the close frame) and the pair stays until the
    idle timeout."""
    idle = IdleClock() if idle_timeout else None
    copies = {asyncio.create_task(_copy(a[0], b[1], idle)): b[1], asyncio.create_task(_copy(b[0], a[1], idle)): a[1]}
    tasks = set(copies)
    timer = asyncio.create_task(idle.expired(idle_timeout)) if idle and idle_timeout else None
    reason = "eof"
    try:
        waiting = tasks | ({timer} if timer else set())
        done, pending = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if timer in done:
            reason = "idle_timeout"
        elif any(task.result() is False for task in done if task is not timer):
            reason = "reset"
        elif all(copies[task].can_write_eof() for task in done if task is not timer):
            rest = pending - {timer} if timer else pending
            if rest:
                waiting = rest | ({timer} if timer else set())
                done, _ = await asyncio.wait(waiting, timeout=None if timer else grace,
                                             return_when=asyncio.FIRST_COMPLETED)
                if timer in done:
                    reason = "idle_timeout"
    finally:
        for task in [*tasks, *([timer] if timer else [])]:
            task.cancel()
        await asyncio.gather(*(_close(writer) for writer in (a[1], b[1])))
    return reason


async def relay_body(client: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     backend: tuple[asyncio.StreamReader, asyncio.StreamWriter], end: ResponseEnd,
                     early: bytes = b"") -> bytes | None:
    """Copy a response's body (its head is sent) from ``backend`` to the client until ``end`` says
    it is complete, then close the backend connection (gorouter dials backends anew by default:
    routing-release ``router.disable_keep_alives``). Returns what the client sent meanwhile (the
    start of its next request, after ``early``) when its connection may carry another request;
    None when it must close: the backend broke off, or the client went away, which ends the
    backend's request too (Go's reverse proxy cancels it with the client's context)."""
    up_reader, up_writer = backend
    watch: asyncio.Future[bytes] | None = asyncio.ensure_future(client.read(65536))
    copy: asyncio.Future[bytes] | None = None
    gone = False
    try:
        while not (end.complete or end.broken):
            copy = copy or asyncio.ensure_future(up_reader.read(65536))
            done, _ = await asyncio.wait({copy, *([watch] if watch else [])}, return_when=asyncio.FIRST_COMPLETED)
            if watch in done:
                data, watch = watch.result(), None
                if not data:
                    gone = True
                    break
                early += data
            if copy in done:
                chunk, copy = copy.result(), None
                if not chunk:
                    end.closed()
                    break
                writer.write(chunk)
                await writer.drain()
                end.feed(chunk)
    finally:
        # A cancelled read must have ended before the next one starts (a StreamReader takes one
        # reader at a time), and a read that finished meanwhile keeps its bytes.
        tasks = [task for task in (watch, copy) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _close(up_writer)
    if watch is not None and not watch.cancelled():
        data = b"" if watch.exception() else watch.result()
        gone, early = gone or not data, early + data
    return None if gone or not end.reusable else early


#: How long a closed side may take to flush what asyncio still buffers for it before it is aborted.
CLOSE_FLUSH_S = 2.0


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close one side; if its peer takes nothing (a zero window), drop the rest after CLOSE_FLUSH_S
    instead of waiting forever: a proxy's buffers are bounded, and gorouter's ForwardIO closes both
    connections outright when one copy ends (cloudfoundry/gorouter handler/forwarder.go), leaving
    what the kernel still holds to drain as an orphan."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), CLOSE_FLUSH_S)
    except (TimeoutError, asyncio.TimeoutError):
        writer.transport.abort()
    except Exception:  # already reset: nothing left to close
        pass
