"""The router keeps a client's connection for the next request, as gorouter's Go server does, and
ends it where it must: ``ResponseEnd`` (sans-I/O) finds where a backend's answer ends; the router,
on loopback with a backend that answers each request on a fresh connection, serves two requests on
one client connection and closes when the client asks, the answer has no length, or the backend
breaks off."""

from __future__ import annotations

import asyncio

import pytest

from harness.cf.router import Router
from harness.cf.streams import ResponseEnd

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
UNTIL_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello"


@pytest.mark.parametrize("raw", [OK, CHUNKED, b"HTTP/1.1 204 No Content\r\n\r\n"])
def test_a_framed_answer_ends_where_its_framing_says(raw: bytes) -> None:
    end = ResponseEnd(b"GET")
    assert not end.feed(raw[:-1]) and not end.feed(b"") and end.feed(raw[-1:]) and end.reusable


def test_an_answer_without_length_ends_only_when_the_backend_closes() -> None:
    end = ResponseEnd(b"GET")
    assert not end.feed(UNTIL_CLOSE) and end.close_delimited
    assert end.closed() and not end.reusable


def test_a_head_answer_has_no_body_whatever_its_length_says() -> None:
    end = ResponseEnd(b"HEAD")
    assert end.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n") and end.reusable


def test_a_backend_that_closes_mid_body_is_broken_not_complete() -> None:
    end = ResponseEnd(b"GET")
    assert not end.feed(OK[:-2]) and not end.closed()
    assert end.broken and not end.reusable


GET = b"GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
GET_CLOSE = b"GET / HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n"


def through_router(requests: list[bytes], answer: bytes = OK, *, slow: bool = False) -> tuple[list[bytes], int, bool]:
    """Send ``requests`` one after another on one connection through a router whose backend sends
    ``answer`` and closes (``slow``: sends the head, then the rest a moment later, and keeps its
    connection open until the router closes it, as a keep-alive server does); returns the answers, how many backend connections the router opened, and
    whether the router then closed the client's connection (else it still waits for a request)."""

    async def go() -> tuple[list[bytes], int, bool]:
        dials = 0

        async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal dials
            dials += 1
            await reader.readuntil(b"\r\n\r\n")
            cut = answer.index(b"\r\n\r\n") + 4 if slow else len(answer)
            writer.write(answer[:cut])
            await writer.drain()
            if slow:
                await asyncio.sleep(0.05)
                writer.write(answer[cut:])
                await reader.read()  # until the router closes this connection
            writer.close()

        server = await asyncio.start_server(backend, "127.0.0.1", 0)
        router = Router("r", {"app.example.com": f"127.0.0.1:{server.sockets[0].getsockname()[1]}"}, False)
        front = await asyncio.start_server(router.handle, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", front.sockets[0].getsockname()[1])
        answers = []
        for request in requests:
            writer.write(request)
            answers.append(await asyncio.wait_for(_one_answer(reader), 5))
        try:
            closed = await asyncio.wait_for(reader.read(1), 0.5) == b""
        except TimeoutError:
            closed = False
        writer.close()
        for listener in (server, front):
            listener.close()
        return answers, dials, closed

    return asyncio.run(go())


async def _one_answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    if b"Transfer-Encoding: chunked" in head:
        return head + await reader.readuntil(b"0\r\n\r\n")
    if b"Content-Length: 5" in head:
        return head + await reader.readexactly(5)
    return head + await reader.read()  # until the router closes


def test_two_requests_cross_one_client_connection_each_on_a_fresh_backend_connection() -> None:
    answers, dials, closed = through_router([GET, GET])
    assert [a.endswith(b"hello") for a in answers] == [True, True] and dials == 2 and not closed
    assert all(b"Connection: close" not in a for a in answers)


@pytest.mark.parametrize("answer", [OK, CHUNKED])
def test_a_body_that_comes_after_the_head_from_a_backend_that_stays_open_is_relayed_whole(answer: bytes) -> None:
    answers, dials, closed = through_router([GET, GET], answer, slow=True)
    assert [a.endswith(answer[-5:]) for a in answers] == [True, True] and dials == 2 and not closed


def test_a_chunked_answer_keeps_the_connection_too() -> None:
    answers, dials, closed = through_router([GET, GET], CHUNKED)
    assert len(answers) == 2 and dials == 2 and not closed


def test_a_client_that_asks_to_close_gets_connection_close_and_a_close() -> None:
    answers, _, closed = through_router([GET_CLOSE])
    assert b"Connection: close" in answers[0] and answers[0].endswith(b"hello") and closed


def test_an_answer_without_length_is_relayed_until_the_backend_closes_then_the_router_closes() -> None:
    answers, _, closed = through_router([GET], UNTIL_CLOSE)
    assert b"Connection: close" in answers[0] and answers[0].endswith(b"hello") and closed


def test_an_unknown_route_is_answered_404_and_the_connection_ends() -> None:
    answers, dials, closed = through_router([b"GET / HTTP/1.1\r\nHost: nope.example.com\r\n\r\n"])
    assert answers[0].startswith(b"HTTP/1.1 404") and dials == 0 and closed


def test_bytes_pipelined_after_an_upgrade_request_go_up_with_it() -> None:
    """A WebSocket client may send frames right after its handshake (test_frames' pipelined check):
    the router must not hold them back as the start of a next request."""

    async def go() -> bytes:
        got = asyncio.get_running_loop().create_future()

        async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            got.set_result(await asyncio.wait_for(reader.read(100), 2))
            writer.close()

        server = await asyncio.start_server(backend, "127.0.0.1", 0)
        router = Router("r", {"app.example.com": f"127.0.0.1:{server.sockets[0].getsockname()[1]}"}, False)
        front = await asyncio.start_server(router.handle, "127.0.0.1", 0)
        _, writer = await asyncio.open_connection("127.0.0.1", front.sockets[0].getsockname()[1])
        writer.write(b"GET /s HTTP/1.1\r\nHost: app.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nFRAME")
        try:
            return await asyncio.wait_for(got, 3)
        finally:
            writer.close()
            server.close()
            front.close()

    assert asyncio.run(go()) == b"FRAME"
