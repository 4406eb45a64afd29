"""Reading what crossed the wire from a pcap: TCP streams, HTTP heads, WebSocket frames.

Sans-I/O over Scapy packets: the harness captures in a node's namespace, then asserts on bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

Endpoint = tuple[str, int]


@dataclass
class TcpStream:
    """One TCP connection, oriented by its SYN: ``client`` opened it."""

    client: Endpoint
    server: Endpoint
    c2s_segments: dict[int, bytes] = field(default_factory=dict)  # seq -> payload
    s2c_segments: dict[int, bytes] = field(default_factory=dict)
    rst: bool = False
    fin: bool = False  # a FIN was seen (either direction)

    @property
    def ended(self) -> bool:
        """The capture holds the end of this connection: everything it carried is in the pcap."""
        return self.fin or self.rst

    @staticmethod
    def _join(segments: dict[int, bytes]) -> bytes:
        out, end = b"", None
        for seq in sorted(segments):
            data = segments[seq]
            if end is not None and seq < end:  # retransmission overlap
                data = data[end - seq:]
            out += data
            end = max(end or 0, seq + len(segments[seq]))
        return out

    @property
    def c2s(self) -> bytes:
        return self._join(self.c2s_segments)

    @property
    def s2c(self) -> bytes:
        return self._join(self.s2c_segments)


def streams(packets: Iterable[Any]) -> list[TcpStream]:
    # Scapy here, not at import: it is 0.2 s of CPU in every process that loads the plugin (each
    # xdist worker, each nested pytest of the plugin's own tests), and the packets are Scapy's already.
    from scapy.layers.inet import IP, TCP

    found: dict[frozenset[Endpoint], TcpStream] = {}
    for pkt in packets:
        if IP not in pkt or TCP not in pkt:
            continue
        src, dst = (pkt[IP].src, pkt[TCP].sport), (pkt[IP].dst, pkt[TCP].dport)
        key = frozenset((src, dst))
        flags = int(pkt[TCP].flags)
        if key not in found:
            if not flags & 0x02 or flags & 0x10:  # first sight must be the client's SYN
                continue
            found[key] = TcpStream(src, dst)
        stream = found[key]
        payload = bytes(pkt[TCP].payload)
        if flags & 0x04:
            stream.rst = True
        if flags & 0x01:
            stream.fin = True
        if payload:
            (stream.c2s_segments if src == stream.client else stream.s2c_segments)[pkt[TCP].seq] = payload
    return list(found.values())


def http_head(data: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """(start line, headers, rest) of an HTTP message at the start of ``data``."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    return lines[0], headers, rest


@dataclass(frozen=True)
class Frame:
    opcode: int
    masked: bool
    length: int


def ws_frames(data: bytes) -> list[Frame]:
    """Frame headers in a WebSocket byte stream (stops at a truncated frame)."""
    frames, i = [], 0
    while i + 2 <= len(data):
        b0, b1 = data[i], data[i + 1]
        length, i = b1 & 0x7F, i + 2
        if length == 126:
            length, i = int.from_bytes(data[i:i + 2], "big"), i + 2
        elif length == 127:
            length, i = int.from_bytes(data[i:i + 8], "big"), i + 8
        masked = bool(b1 & 0x80)
        i += 4 if masked else 0
        if i + length > len(data):
            break
        frames.append(Frame(b0 & 0x0F, masked, length))
        i += length
    return frames
