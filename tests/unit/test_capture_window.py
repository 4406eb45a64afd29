"""A probe's pcap is cut to the attempt's window before Scapy dissects it (sans-I/O, no Docker)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from harness.capture import in_window  # first: it turns off Scapy's route tables on the host
from scapy.layers.inet import IP, TCP  # noqa: I001
from scapy.layers.l2 import CookedLinux, Ether
from scapy.utils import PcapReader, wrpcap

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


def test_a_fresh_process_dissects_tcp_under_a_cooked_v2_header(tmp_path: Path) -> None:
    """What a worker's first wire read gets (tcpdump -i any writes Linux cooked v2): IP and TCP, not
    Raw, although nothing but harness.capture has imported Scapy in that process."""
    from scapy.layers.l2 import CookedLinuxV2

    (tmp_path / "p.pcap").write_bytes(pcap(tmp_path, CookedLinuxV2, [100.0]))
    code = ("import sys; from harness.capture import in_window; "
            "print(in_window(open(sys.argv[1], 'rb').read())[0].summary())")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.pcap")], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], check=True).stdout
    assert "IP / TCP" in out, out


def test_the_host_side_loads_no_route_tables() -> None:
    """Reading pcaps needs no routes; loading them dissected a netlink answer per host interface at
    import (~1.8 CPU-s per xdist worker during a run). A fresh process that imports the probes'
    module and every layer it dissects has empty route tables."""
    code = ("import harness.capture; import scapy.layers.inet, scapy.layers.inet6; from scapy.config import conf; "
            "print(len(conf.route.routes), len(conf.route6.routes))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], check=True).stdout
    assert out.split() == ["0", "0"], out
