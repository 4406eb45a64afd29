"""Packet work inside a node's network namespace, with Scapy (needs NET_RAW).

``capture``: tcpdump on every interface but loopback into a pcap, flushed per packet so the file
is valid while the capture still runs. ``inject-rst``: watch a live TCP stream and, after a pause,
inject a RST that the victim accepts (its sequence number is exactly the next one expected).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time

from scapy.all import IP, TCP, UDP, AsyncSniffer, Ether, Raw, send, sendp  # type: ignore[attr-defined]

from harness.cf.settings import log_event


def interfaces() -> list[str]:
    return sorted(i for i in os.listdir("/sys/class/net") if i != "lo")


#: Payload of the frames a probe sends itself to prove the pcap receives what crosses the wire.
MARKER = b"harness-probe-ready"


def capture(out: str) -> None:
    """tcpdump on every interface into ``out`` (packet-buffered, 8 MiB kernel buffer: a Python
    sniffer dropped packets, SYNs included, when the CPU was busy); say ``listening`` only once a
    marker frame sent on every interface is in the pcap file (a real signal, not a sleep)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    wanted = interfaces()
    dump = subprocess.Popen(["tcpdump", "-i", "any", "-Z", "root", "-U", "-B", "8192", "-s", "0", "-w", out,
                             "not net 127.0.0.0/8"], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and dump.poll() is None:
        for iface in wanted:
            sendp(Ether(dst="ff:ff:ff:ff:ff:ff") / IP(dst="255.255.255.255") / UDP(sport=9, dport=9)
                  / Raw(MARKER + iface.encode()), iface=iface, verbose=False)
        time.sleep(0.1)
        data = open(out, "rb").read() if os.path.exists(out) else b""
        if all(MARKER + iface.encode() in data for iface in wanted):
            break
    else:
        log_event("capture", "not_capturing", interfaces=wanted, tcpdump_exit=dump.poll())
        dump.terminate()
        raise SystemExit(1)
    log_event("capture", "listening", interfaces=wanted, out=out)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    dump.terminate()  # tcpdump flushes and closes the pcap on SIGTERM
    dump.wait(10)


def inject_rst(port: int, after: float, seq_offset: int = 0) -> None:
    """Reset the stream on ``port`` from this end: a RST to the peer whose sequence number is
    exactly what the peer expects next (its last ACK), so RFC 5961 checks accept it. (A RST spoofed
    towards this namespace itself would arrive on loopback with a foreign source: a martian.)"""
    last: dict[tuple[str, int], object] = {}

    def keep(pkt: object) -> None:
        if TCP in pkt and pkt[TCP].sport == port:  # type: ignore[index,operator]
            last[(pkt[IP].dst, pkt[TCP].dport)] = pkt  # type: ignore[index]

    sniffer = AsyncSniffer(iface=interfaces(), prn=keep, store=False)
    sniffer.start()
    time.sleep(0.3)
    log_event("inject", "listening", port=port)
    time.sleep(after)
    sniffer.stop()
    if not last:
        print(json.dumps({"event": "result", "injected": None, "error": f"no packets from port {port}"}), flush=True)
        return
    pkt = list(last.values())[-1]
    seg = pkt[TCP]  # type: ignore[index]
    # seq_offset != 0 is the negative control: a RST outside the peer's window, which it must drop.
    seq = (seg.ack + seq_offset) % (1 << 32)
    rst = IP(src=pkt[IP].dst, dst=pkt[IP].src) / TCP(sport=seg.dport, dport=seg.sport, flags="R", seq=seq)  # type: ignore[index]
    send(rst, verbose=False)
    print(json.dumps({"event": "result", "injected": {"src": f"{pkt[IP].dst}:{seg.dport}",  # type: ignore[index]
                                                      "dst": f"{pkt[IP].src}:{seg.sport}", "seq": seq,
                                                      "in_window": seq_offset == 0}}),  # type: ignore[index]
          flush=True)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="harness.cf capture")
    parser.add_argument("--out", default="/tmp/capture.pcap")
    parser.add_argument("--inject-rst-port", type=int, default=0, help="inject a RST instead of capturing")
    parser.add_argument("--after", type=float, default=3.0)
    parser.add_argument("--seq-offset", type=int, default=0, help="shift the RST's sequence number (0: exact)")
    args = parser.parse_args(argv)
    if args.inject_rst_port:
        inject_rst(args.inject_rst_port, args.after, args.seq_offset)
    else:
        capture(args.out)
