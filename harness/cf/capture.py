"""Packet work inside a node's network namespace (needs NET_RAW).

``capture``: tcpdump on every interface but loopback into a pcap, flushed per packet so the file
is valid while the capture still runs; it proves itself with marker datagrams from the standard
library's sockets (no Scapy: importing it cost ~0.3 s of CPU per probe start and rotation, and a
matrix starts or rotates a few hundred probes). ``inject-rst``, with Scapy: watch a live TCP stream
and, after a pause, inject a RST that the victim accepts (its sequence number is exactly the next
one expected).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import time
from typing import Any

from harness.cf.settings import log_event


def interfaces() -> list[str]:
    return sorted(i for i in os.listdir("/sys/class/net") if i != "lo")


#: Payload of the frames a probe sends itself to prove the pcap receives what crosses the wire.
MARKER = b"harness-probe-ready"


#: what the capture waits for: stop (TERM, INT) or start a new pcap (USR1)
SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1}


def capture(out: str) -> None:
    """tcpdump on every interface into ``out`` (packet-buffered, 8 MiB kernel buffer: a Python
    sniffer dropped packets, SYNs included, when the CPU was busy); say ``listening`` only once a
    marker frame sent on every interface is in the pcap file (a real signal, not a sleep).

    SIGUSR1 starts a new ``out`` (a later cell keeps this node and wants a pcap of its own): a new
    tcpdump proves itself the same way, takes the file's name, and only then the old one stops, so
    no packet falls between the two; ``rotated`` says it is done, ``rotate_failed`` that the old
    capture goes on."""
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    dump = _proven_dump(out)
    if dump is None:
        raise SystemExit(1)
    log_event("capture", "listening", interfaces=interfaces(), out=out, pid=os.getpid())
    rotations = 0
    while signal.sigwait(SIGNALS) == signal.SIGUSR1:
        try:  # the node may have changed networks since (a kept client): interfaces() reads them anew
            fresh = _proven_dump(f"{out}.next")
        except Exception as exc:  # a failed rotation must not end the capture that still works
            log_event("capture", "rotate_error", error=repr(exc))
            fresh = None
        if fresh is None:
            log_event("capture", "rotate_failed", rotations=rotations)
            continue
        os.replace(f"{out}.next", out)  # tcpdump keeps writing to the file it opened, now named ``out``
        _stop(dump)
        dump, rotations = fresh, rotations + 1
        log_event("capture", "rotated", rotations=rotations)
    _stop(dump)


def _proven_dump(out: str) -> "subprocess.Popen[bytes] | None":
    """A tcpdump writing ``out`` once it listens and its markers are in the file, else None."""
    wanted = interfaces()
    dump = subprocess.Popen(["tcpdump", "-i", "any", "-Z", "root", "-U", "-B", "8192", "-s", "0", "-w", out,
                             "not net 127.0.0.0/8"], stderr=subprocess.PIPE,
                            # a child inherits the blocked mask: unblocked, SIGTERM stops tcpdump
                            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS))
    if _tcpdump_listening(dump) and _markers_captured(out, wanted):
        return dump
    log_event("capture", "not_capturing", interfaces=wanted, tcpdump_exit=dump.poll())
    _stop(dump)
    return None


def _stop(dump: "subprocess.Popen[bytes]") -> None:
    dump.terminate()  # tcpdump flushes and closes the pcap on SIGTERM
    dump.wait(10)
    if (drain := _DRAINS.pop(dump.pid, None)) is not None:
        drain.wait(10)  # ends with tcpdump's stderr; waited for, so no zombie per rotation


#: tcpdump pid -> the ``cat`` that keeps its stderr drained
_DRAINS: dict[int, "subprocess.Popen[bytes]"] = {}


def _tcpdump_listening(dump: "subprocess.Popen[bytes]") -> bool:
    """Wait for tcpdump's own "listening on" (printed once its socket is bound and filtered)."""
    assert dump.stderr is not None
    for line in dump.stderr:  # ends when tcpdump exits
        if b"listening on" in line:
            # keep stderr drained
            _DRAINS[dump.pid] = subprocess.Popen(["cat"], stdin=dump.stderr, stdout=subprocess.DEVNULL)
            return True
    return False


def _markers_captured(out: str, wanted: list[str], timeout: float = 20) -> bool:
    """Send a marker datagram out of every interface (again every 0.5 s) until each is in the pcap file."""
    sockets = {iface: marker_socket(iface) for iface in wanted}  # one socket each, not one per datagram
    seen, offset, deadline, last_sent = set(), 0, time.monotonic() + timeout, 0.0
    try:
        while time.monotonic() < deadline:
            if time.monotonic() - last_sent >= 0.5:
                for iface in set(wanted) - seen:
                    _send_marker(sockets[iface], iface)
                last_sent = time.monotonic()
            time.sleep(0.05)
            if os.path.exists(out):
                with open(out, "rb") as fh:  # only what was written since the last look (and a marker's length)
                    fh.seek(max(0, offset - 64))
                    data = fh.read()
                    offset = fh.tell()
                seen |= {iface for iface in wanted if MARKER + iface.encode() in data}
            if seen == set(wanted):
                return True
        return False
    finally:
        for sock in sockets.values():
            sock.close()


def marker_socket(iface: str) -> socket.socket:
    """A UDP socket whose broadcasts leave through ``iface`` only (SO_BINDTODEVICE, NET_RAW)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    return sock


def _send_marker(sock: socket.socket, iface: str) -> None:
    """One marker to the discard port; an interface without an IPv4 route says so in the log and
    is retried (the capture then reports ``not_capturing`` if it never gets one out)."""
    try:
        sock.sendto(MARKER + iface.encode(), ("255.255.255.255", 9))
    except OSError as exc:
        log_event("capture", "marker_not_sent", interface=iface, error=repr(exc))


def inject_rst(port: int, after: float, seq_offset: int = 0) -> None:
    """Reset the stream on ``port`` from this end: a RST to the peer whose sequence number is
    exactly what the peer expects next (its last ACK), so RFC 5961 checks accept it. (A RST spoofed
    towards this namespace itself would arrive on loopback with a foreign source: a martian.)

    The RST goes out at a quiet moment: just after this end acknowledged everything the peer had
    sent. A segment the peer sent just before the RST would otherwise reach this end after the
    peer's socket is gone; its ACK then draws the peer kernel's RST, and this end learns of the reset
    without any keepalive (seen in CI: noaa's no-keepalive control learned 0.4 s after the RST).
    On a busy machine the sniffer's view lags the wire, so the quiet moment can be stale: the result's
    ``raced`` says whether this end sent the peer anything after the RST (seen: learned at 2.8 s with
    the keepalive off), and the checks do not judge such an attempt."""
    # The layers and functions used, not ``scapy.all`` (that loads every layer: ~0.75 s more CPU).
    from scapy.layers.inet import IP, TCP
    from scapy.sendrecv import AsyncSniffer, send

    peer: dict[tuple[str, int], Any] = {}  # this end's (address, port) -> the peer's latest segment to it
    sent: dict[tuple[str, int], list[tuple[float, bool]]] = {}  # -> when this end sent the peer a segment, a RST?
    data_end: dict[tuple[str, int], int] = {}  # -> the sequence number after the peer's last data byte
    quiet: dict[tuple[str, int], bool] = {}  # -> this end has acknowledged all the peer's data since

    latest = [0.0]  # the capture time of the last packet the sniffer got to

    def keep(pkt: Any) -> None:
        latest[0] = max(latest[0], float(pkt.time))
        if TCP not in pkt:
            return
        if pkt[TCP].sport == port:
            key = (pkt[IP].dst, pkt[TCP].dport)
            peer.pop(key, None)  # re-inserted last: the most recent stream comes last
            peer[key] = pkt
            if length := len(bytes(pkt[TCP].payload)):
                data_end[key], quiet[key] = (pkt[TCP].seq + length) % (1 << 32), False
            quiet.setdefault(key, True)  # no data from the peer yet: nothing of it can be in flight
        elif pkt[TCP].dport == port and (key := (pkt[IP].src, pkt[TCP].sport)) in peer:
            sent.setdefault(key, []).append((float(pkt.time), "R" in pkt[TCP].flags))  # the kernel's time
            if key in data_end:
                quiet[key] = (pkt[TCP].ack - data_end[key]) % (1 << 32) < (1 << 31)  # all of it acknowledged

    sniffer = AsyncSniffer(iface=interfaces(), prn=keep, store=False)
    sniffer.start()
    time.sleep(0.3)
    log_event("inject", "listening", port=port)
    # ``after`` counts from the stream's first packet, not from now: a client slow to start (a busy
    # machine) must still be reset mid-stream, not find the injector already given up
    deadline = time.monotonic() + 30
    while not peer and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(after)
    if not peer:
        sniffer.stop()
        print(json.dumps({"event": "result", "injected": None, "error": f"no packets from port {port}"}), flush=True)
        return
    key = list(peer)[-1]
    waited = time.monotonic() + QUIET_WAIT_S
    while not quiet.get(key) and time.monotonic() < waited:
        time.sleep(0.001)
    pkt, was_quiet = peer[key], bool(quiet.get(key))
    seg = pkt[TCP]
    # seq_offset != 0 is the negative control: a RST outside the peer's window, which it must drop.
    seq = (seg.ack + seq_offset) % (1 << 32)
    rst = IP(src=pkt[IP].dst, dst=pkt[IP].src) / TCP(sport=seg.dport, dport=seg.sport, flags="R", seq=seq)
    sent_at = time.time()
    send(rst, verbose=False)
    time.sleep(RACE_WINDOW_S)
    caught_up = time.monotonic() + CATCH_UP_S  # the sniffer dissects behind the wire on a busy machine
    while latest[0] < sent_at + RACE_WINDOW_S and time.monotonic() < caught_up:
        time.sleep(0.01)
    sniffer.stop()
    print(json.dumps({"event": "result", "injected": {"src": f"{pkt[IP].dst}:{seg.dport}",
                                                      "dst": f"{pkt[IP].src}:{seg.sport}", "seq": seq,
                                                      "in_window": seq_offset == 0, "quiet": was_quiet,
                                                      "raced": raced(sent.get(key, []), sent_at)}}),
          flush=True)


def raced(segments: list[tuple[float, bool]], sent_at: float) -> bool:
    """This end sent the peer a segment after its RST (an ACK of data still in flight): the peer's
    kernel answers it with a RST, so this end learns without any keepalive of its own. ``segments``:
    (capture time, is a RST) of what this end sent the peer. "After" counts from the RST on the wire
    at or after ``sent_at`` (an ACK that left while Scapy built the RST reached the peer first)."""
    rst_at = next((at for at, rst in segments if rst and at >= sent_at), sent_at)
    return any(at > rst_at and not rst for at, rst in segments)


#: How long the injector watches after its RST for a segment from this end (the race above): data
#: in flight arrives within milliseconds, and Linux delays an ACK 40-200 ms at most.
RACE_WINDOW_S = 0.5
#: How long the injector then waits at most for its sniffer to reach packets captured after that
#: window (a quiet link has none: it waits this long for nothing).
CATCH_UP_S = 1.0
#: How long the injector waits for a quiet moment (everything the peer sent acknowledged) before it
#: sends the RST anyway; at noaa's 20 envelopes/s there is one every 50 ms.
QUIET_WAIT_S = 1.0


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
