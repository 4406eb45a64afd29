"""A pcap's window cut from the raw file gives the packets Scapy's own reader finds in it."""

import io

from scapy.layers.inet import IP, TCP
from scapy.utils import PcapWriter, RawPcapReader

from harness.capture import in_window
from harness.protocol.pcap_window import window


def _pcap(times: list[float], nano: bool = False) -> bytes:
    buffer = io.BytesIO()
    writer = PcapWriter(buffer, nano=nano, sync=True)
    for i, at in enumerate(times):
        pkt = IP(dst="10.0.0.1") / TCP(sport=1000 + i)
        pkt.time = at
        writer.write(pkt)
    writer.flush()
    return buffer.getvalue()


def _sports(pcap: bytes) -> list[int]:
    return [int(p[TCP].sport) for p in in_window(pcap)]


def test_the_window_keeps_exactly_the_records_inside_it() -> None:
    pcap = _pcap([100.0, 100.5, 101.0, 102.0])
    assert _sports(window(pcap, 100.5, 101.0)) == [1001, 1002]
    assert _sports(window(pcap)) == [1000, 1001, 1002, 1003]
    assert _sports(window(pcap, since=101.5)) == [1003]


def test_nanosecond_captures_are_read_in_nanoseconds() -> None:
    pcap = _pcap([100.25, 100.75], nano=True)
    assert _sports(window(pcap, 100.5, None)) == [1001]


def test_a_record_still_being_written_is_left_out() -> None:
    pcap = _pcap([100.0, 101.0])
    cut = window(pcap[:-3])
    assert _sports(cut) == [1000]
    assert len(list(RawPcapReader(io.BytesIO(cut)))) == 1


def test_what_is_not_a_pcap_comes_back_unchanged() -> None:
    assert window(b"") == b""
    assert window(b"not a pcap at all, longer than a header") == b"not a pcap at all, longer than a header"
