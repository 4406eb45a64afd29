from __future__ import annotations

import pytest

from harness.protocol import proxy_protocol as pp


def test_v1_tcp4_header_is_parsed_and_its_length_reported() -> None:
    data = b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 80\r\nGET / HTTP/1.1\r\n"
    verdict = pp.parse_v1(data)
    assert verdict == pp.ProxyHeader("192.0.2.1", 51000, "198.51.100.2", 80, 44)
    assert data[verdict.length:].startswith(b"GET")


def test_encode_then_parse_round_trips() -> None:
    raw = pp.encode_v1("2001:db8::1", 1234, "2001:db8::2", 443)
    assert raw.startswith(b"PROXY TCP6 ")
    assert pp.parse_v1(raw) == pp.ProxyHeader("2001:db8::1", 1234, "2001:db8::2", 443, len(raw))


@pytest.mark.parametrize("data", [b"", b"PRO", b"PROXY TCP4 1.2.3.4"])
def test_partial_header_needs_more_data(data: bytes) -> None:
    assert pp.parse_v1(data) == pp.NeedMoreData()


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", pp.V2_SIGNATURE + b"\x21\x11", b"POST"])
def test_no_header_passes_through_including_v2(data: bytes) -> None:
    """gorouter only reads v1: a v2 header reaches the HTTP parser as garbage."""
    assert pp.parse_v1(data) == pp.NoHeader()


@pytest.mark.parametrize("line, why", [
    (b"PROXY UNKNOWN\r\n", "UNKNOWN"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "malformed"),
    (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "not TCP4"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n", "out of range"),
    (b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "unknown PROXY v1 protocol"),
    (b"PROXY TCP4 " + b"1" * 120, "longer than 107"),
])
def test_bad_headers_are_refused(line: bytes, why: str) -> None:
    with pytest.raises(pp.ProxyProtocolError, match=why):
        pp.parse_v1(line)
