"""Packet work inside a node's network namespace, with Scapy (needs NET_RAW).

``capture``: sniff every interface but loopback into a pcap, flushed per packet so the file is
valid while the capture still runs. ``inject-rst``: watch a live TCP stream and, after a pause,
inject a RST that the victim accepts (its sequence number is exactly the next one expected).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time

from scapy.all import IP, TCP, AsyncSniffer, PcapWriter, send  # type: ignore[attr-defined]

from harness.cf.settings import log_event


def interfaces() -> list[str]:
    return sorted(i for i in os.listdir("/sys/class/net") if i != "lo")


def capture(out: str) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    writer = PcapWriter(out, sync=True)
    sniffer = AsyncSniffer(iface=interfaces(), prn=writer.write, store=False)
    sniffer.start()
    time.sleep(0.3)  # the sniffer thread has its sockets open by now
    log_event("capture", "listening", interfaces=interfaces(), out=out)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    sniffer.stop()
    writer.close()


def inject_rst(port: int, after: float) -> None:
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
    rst = IP(src=pkt[IP].dst, dst=pkt[IP].src) / TCP(sport=seg.dport, dport=seg.sport, flags="R", seq=seg.ack)  # type: ignore[index]
    send(rst, verbose=False)
    print(json.dumps({"event": "result", "injected": {"src": f"{pkt[IP].dst}:{seg.dport}",  # type: ignore[index]
                                                      "dst": f"{pkt[IP].src}:{seg.sport}", "seq": seg.ack}}),  # type: ignore[index]
          flush=True)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="harness.cf capture")
    parser.add_argument("--out", default="/tmp/capture.pcap")
    parser.add_argument("--inject-rst-port", type=int, default=0, help="inject a RST instead of capturing")
    parser.add_argument("--after", type=float, default=3.0)
    args = parser.parse_args(argv)
    if args.inject_rst_port:
        inject_rst(args.inject_rst_port, args.after)
    else:
        capture(args.out)
