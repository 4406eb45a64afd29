"""The records of a pcap captured in a time window, cut from the raw file without dissecting any.

A node's capture holds its whole history (every cell that kept it); a check wants one attempt's
window. Cutting it where the file is, inside the node, sends the harness only that window (through
the node's agent) instead of the whole file through a ``get_archive`` (which re-executes dockerd
for its tar: ~70 ms of the engine's CPU a read). Format: libpcap's (the one tcpdump writes), a
24-byte file header, then per packet a 16-byte record header (seconds, micro- or nanoseconds,
captured length, original length) and its bytes."""

from __future__ import annotations

import struct

#: The file header's magic: (byte order, sub-second units per second).
MAGICS = {b"\xd4\xc3\xb2\xa1": ("<", 1e6), b"\xa1\xb2\xc3\xd4": (">", 1e6),
          b"\x4d\x3c\xb2\xa1": ("<", 1e9), b"\xa1\xb2\x3c\x4d": (">", 1e9)}
FILE_HEADER = 24
RECORD_HEADER = 16


def window(pcap: bytes, since: float | None = None, until: float | None = None) -> bytes:
    """The file header and the records captured in [since, until] (None: open-ended). A trailing
    record still being written is left out; anything that is not a libpcap file comes back as it is,
    for the reader to name."""
    kind = MAGICS.get(pcap[:4])
    if kind is None or len(pcap) < FILE_HEADER:
        return pcap
    record = struct.Struct(kind[0] + "IIII")
    out, pos = [pcap[:FILE_HEADER]], FILE_HEADER
    while pos + RECORD_HEADER <= len(pcap):
        sec, frac, captured, _ = record.unpack_from(pcap, pos)
        end = pos + RECORD_HEADER + captured
        if end > len(pcap):
            break
        at = sec + frac / kind[1]
        if (since is None or at >= since) and (until is None or at <= until):
            out.append(pcap[pos:end])
        pos = end
    return b"".join(out)
