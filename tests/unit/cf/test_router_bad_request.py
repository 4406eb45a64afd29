"""A request the router cannot parse is still recorded under its attempt id: an LB in TCP mode
sends its PROXY v2 header the moment the client connects, and the client's request (with
X-Harness-Attempt) may follow later. On loopback, no containers."""

from __future__ import annotations

import asyncio

import pytest

from harness.cf import router
from harness.cf.router import Router
from harness.protocol import proxy_protocol as pp

#: The 16-byte v2 header of a TCP4 connection and its 12 address bytes, as HAProxy's send-proxy-v2 writes it.
V2 = pp.V2_SIGNATURE + b"\x21\x11\x00\x0c" + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + (40000).to_bytes(2, "big") + (80).to_bytes(2, "big")
GET = b"GET /v2/info HTTP/1.1\r\nHost: api.example.com\r\nX-Harness-Attempt: a1b2c3\r\n\r\n"


def _exchange(reading_proxy: bool, delay: float) -> tuple[bytes, dict[str, object]]:
    """The router's first answer line and its record, for a v2 header with the request ``delay`` s later."""
    async def go() -> tuple[bytes, dict[str, object]]:
        r = Router("r", {}, reading_proxy)
        front = await asyncio.start_server(r.handle, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", front.sockets[0].getsockname()[1])
        writer.write(V2)
        await asyncio.sleep(delay)
        writer.write(GET)
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        front.close()
        return answer.split(b"\r\n", 1)[0], r.seen[-1]

    return asyncio.run(go())


@pytest.mark.parametrize("reading_proxy", [False, True], ids=["plain", "reading-proxy-v1"])
def test_a_request_behind_a_v2_header_is_recorded_under_its_attempt_when_it_comes_late(reading_proxy: bool) -> None:
    status, record = _exchange(reading_proxy, delay=0.6)
    assert status == b"HTTP/1.1 400 Bad Request"
    assert (record["attempt"], record["proxy_v2_signature"]) == ("a1b2c3", True), record


def test_a_connection_that_never_sends_its_request_is_answered_after_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: past ATTEMPT_WAIT_S the router answers 400 without an attempt (what the loaded CI run
    recorded with the old 0.2 s wait), so the wait is what binds the record."""
    monkeypatch.setattr(router, "ATTEMPT_WAIT_S", 0.2)
    status, record = _exchange(False, delay=0.6)
    assert status == b"HTTP/1.1 400 Bad Request"
    assert record["attempt"] is None and record["proxy_v2_signature"] is True
