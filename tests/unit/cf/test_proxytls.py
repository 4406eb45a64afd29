"""The TLS listener's PROXY reading on a real socket pair (no network): the line is taken off
byte-exactly, so what follows (the ClientHello) is left intact for TLS."""

from __future__ import annotations

import asyncio
import socket

import pytest

from harness.cf import proxytls
from harness.protocol import proxy_protocol as pp


def run(first: bytes, *, later: bytes = b"") -> tuple[pp.ProxyHeader | None, bytes]:
    async def go() -> tuple[pp.ProxyHeader | None, bytes]:
        a, b = socket.socketpair()
        b.setblocking(False)
        a.sendall(first)
        if later:
            asyncio.get_running_loop().call_later(0.02, a.sendall, later)
        header = await proxytls.read_proxy_header(b)
        await asyncio.sleep(0.05)
        rest = b.recv(4096)
        a.close()
        b.close()
        return header, rest

    return asyncio.run(go())


def test_the_proxy_line_is_taken_off_and_the_tls_bytes_stay() -> None:
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    header, rest = run(pp.encode_v1("10.1.2.3", 40000, "10.9.9.9", 443) + hello)
    assert header is not None and (header.source_ip, header.source_port) == ("10.1.2.3", 40000)
    assert rest == hello


def test_a_line_split_across_segments_within_100ms_is_read() -> None:
    line = pp.encode_v1("10.1.2.3", 40000, "10.9.9.9", 443)
    header, rest = run(line[:10], later=line[10:] + b"\x16\x03")
    assert header is not None and header.dest_port == 443 and rest == b"\x16\x03"


def test_no_header_leaves_every_byte() -> None:
    header, rest = run(b"\x16\x03\x01\x00\x05hello")
    assert header is None and rest == b"\x16\x03\x01\x00\x05hello"


def test_refused_headers_raise() -> None:
    with pytest.raises(pp.ProxyProtocolError):
        run(b"PROXY UNKNOWN\r\n\x16\x03")
    with pytest.raises(pp.ProxyProtocolError, match="incomplete"):
        run(b"PROXY TCP4 10.1.2.3")
