"""PROXY protocol as gorouter reads it (armon/go-proxyproto): v1 text only, header optional.

Sans-I/O: feed the first bytes of a connection, get a verdict. A connection that does not start
with ``PROXY `` passes through untouched (so a v2 binary header reaches the HTTP parser as garbage);
``PROXY UNKNOWN`` is rejected because gorouter does not set UnknownOK.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

PREFIX = b"PROXY "
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
MAX_V1_LENGTH = 107  # including CRLF (spec section 2.1)
#: gorouter waits at most this long for the header before treating the connection as plain.
HEADER_TIMEOUT_S = 0.1


class ProxyProtocolError(ValueError):
    """The peer sent a PROXY header gorouter would refuse; gorouter drops the connection."""


@dataclass(frozen=True)
class ProxyHeader:
    source_ip: str
    source_port: int
    dest_ip: str
    dest_port: int
    length: int  # bytes the header took, to strip from the stream


@dataclass(frozen=True)
class NeedMoreData:
    pass


@dataclass(frozen=True)
class NoHeader:
    pass


Verdict = ProxyHeader | NeedMoreData | NoHeader


def parse_v1(data: bytes) -> Verdict:
    """Decide what the connection's first bytes are; raises ProxyProtocolError on a bad header."""
    if len(data) < len(PREFIX):
        return NeedMoreData() if PREFIX.startswith(data) else NoHeader()
    if not data.startswith(PREFIX):
        return NoHeader()
    end = data.find(b"\r\n")
    if end < 0:
        if len(data) >= MAX_V1_LENGTH:
            raise ProxyProtocolError("PROXY v1 header longer than 107 bytes")
        return NeedMoreData()
    line = data[:end].decode("ascii", errors="replace")
    parts = line.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        raise ProxyProtocolError("PROXY UNKNOWN is not accepted (gorouter does not set UnknownOK)")
    if len(parts) != 6:
        raise ProxyProtocolError(f"malformed PROXY v1 header: {line!r}")
    _, family, src, dst, sport, dport = parts
    want = {"TCP4": 4, "TCP6": 6}.get(family)
    if want is None:
        raise ProxyProtocolError(f"unknown PROXY v1 protocol family {family!r}")
    try:
        for addr in (src, dst):
            if ipaddress.ip_address(addr).version != want:
                raise ProxyProtocolError(f"address {addr} is not {family}")
        ports = int(sport), int(dport)
    except ValueError as exc:
        raise ProxyProtocolError(f"malformed PROXY v1 header: {line!r} ({exc})") from None
    if not all(0 <= p <= 65535 for p in ports):
        raise ProxyProtocolError(f"port out of range in {line!r}")
    return ProxyHeader(src, ports[0], dst, ports[1], end + 2)


def encode_v1(source_ip: str, source_port: int, dest_ip: str, dest_port: int) -> bytes:
    family = "TCP6" if ipaddress.ip_address(source_ip).version == 6 else "TCP4"
    return f"PROXY {family} {source_ip} {dest_ip} {source_port} {dest_port}\r\n".encode()
