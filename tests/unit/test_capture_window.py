"""A probe's pcap is cut to the attempt's window before Scapy dissects it (sans-I/O, no Docker)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import CookedLinux, Ether
from scapy.utils import PcapReader, wrpcap

from harness.capture import in_window

pytestmark = pytest.mark.unit


def pcap(tmp_path: Path, layer: type, times: list[float]) -> bytes:
    packets = []
    for n, at in enumerate(times):
        pkt = layer() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000 + n, dport=80)
        pkt.time = at
        packets.append(pkt)
    wrpcap(str(tmp_path / "p.pcap"), packets)
    return (tmp_path / "p.pcap").read_bytes()


@pytest.mark.parametrize("layer", [Ether, CookedLinux])  # tcpdump -i any writes Linux cooked captures
def test_only_packets_inside_the_window_are_returned_dissected(tmp_path: Path, layer: type) -> None:
    data = pcap(tmp_path, layer, [100.0, 105.25, 110.5, 120.0])
    got = in_window(data, since=105.0, until=111.0)
    assert [p[TCP].sport for p in got] == [40001, 40002]
    assert [round(float(p.time), 3) for p in got] == [105.25, 110.5]


def test_no_window_is_the_whole_capture_as_scapy_reads_it(tmp_path: Path) -> None:
    data = pcap(tmp_path, Ether, [1.0, 2.0, 3.0])
    with PcapReader(io.BytesIO(data)) as reader:
        expected = [bytes(p) for p in reader]
    assert [bytes(p) for p in in_window(data)] == expected
