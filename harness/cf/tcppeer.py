"""A WebSocket client whose TCP is Scapy's own, not the kernel's: it drives the handshake and the
stream through an LB segment by segment, so the harness can do what no socket API allows.

Modes: ``segments`` (the request in out-of-order and overlapping segments), ``inorder`` (the same
request in one segment: the control), ``zerowindow`` (after a few frames every ACK advertises a
zero receive window: a TCP-level slow consumer), ``openwindow`` (the same, window kept open: the
control), ``halfclose`` (a FIN after a few frames; it keeps reading), ``hold`` (no FIN: the control).

Runs in the client node (its agent forks it: the client's namespace, NET_RAW + NET_ADMIN).
The kernel there knows nothing of this connection and would answer the LB's SYN-ACK with a RST, so
an iptables rule drops the kernel's RSTs from this source port for the run; Scapy's own packets
carry TTL 63 and the rule matches only TTL 64 (the kernel's default), so Scapy can still reset.
Prints JSON lines: ``connected`` after the 101, then ``result``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import socket
import subprocess
import threading
import time
from typing import Any

# The layers and functions used, not ``scapy.all``: that loads every layer (~0.75 s more CPU per
# peer start; a matrix starts three per Scapy-peer cell).
from scapy.config import conf
from scapy.layers.inet import IP, TCP
from scapy.sendrecv import AsyncSniffer, send

from websockets.frames import Frame, Opcode

TTL = 63  # Scapy's packets; the kernel's RSTs (TTL 64) are the ones dropped
SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08
WINDOW = 65535
#: The harness creates this file when it has seen what it waited for: stop holding (``--end-file``:
#: one per attempt, as peers run side by side in the client node).
END = "/tmp/tcppeer-end"


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}, default=str), flush=True)


class ScapyTcp:
    """One TCP connection, both directions accounted from the segments Scapy sees and sends."""

    def __init__(self, dst: str, dport: int) -> None:
        self.dst, self.dport = dst, dport
        self.sport = random.randint(42000, 60999)
        self.isn = random.randint(1, 1 << 31)
        self.snd = self.isn  # next sequence number to send
        self.rcv: int | None = None  # next sequence number expected from the peer
        self.inbox = bytearray()
        self.window = WINDOW
        self.zero_acks = 0  # ACKs sent with a zero window
        self.pongs = 0  # pings answered
        self.fin_sent = False
        self.fin_at: float | None = None
        self.rst_at: float | None = None
        self.changed = threading.Condition()
        self.sniffer = AsyncSniffer(lfilter=self._ours, prn=self._on_packet, store=False)

    def _ours(self, pkt: Any) -> bool:
        return IP in pkt and TCP in pkt and pkt[IP].src == self.dst and pkt[TCP].sport == self.dport \
            and pkt[TCP].dport == self.sport

    def segment(self, flags: int, payload: bytes = b"", seq: int | None = None) -> None:
        send(IP(dst=self.dst, ttl=TTL) / TCP(sport=self.sport, dport=self.dport, flags=flags,
                                             seq=(self.snd if seq is None else seq) % (1 << 32),
                                             ack=(self.rcv or 0) % (1 << 32), window=self.window) / payload,
             verbose=False)
        if flags & ACK and self.window == 0:
            self.zero_acks += 1

    def _on_packet(self, pkt: Any) -> None:
        t = pkt[TCP]
        flags, data = int(t.flags), bytes(t.payload)
        with self.changed:
            if flags & RST:
                self.rst_at = self.rst_at or time.time()
            elif flags & SYN and flags & ACK and self.rcv is None:
                self.rcv = t.seq + 1
            elif self.rcv is not None:
                if data and t.seq == self.rcv % (1 << 32) and self.window > 0:
                    self.inbox += data[:self.window]
                    self.rcv += min(len(data), self.window)
                    self._answer_pings()
                if flags & FIN and (t.seq + len(data)) % (1 << 32) == self.rcv % (1 << 32):
                    self.rcv += 1
                    self.fin_at = self.fin_at or time.time()
                # Data, a FIN, and a zero-window probe (a segment below the expected sequence number,
                # RFC 9293 3.10.7.4: an unacceptable segment is answered with an ACK) get an ACK that
                # carries the current window: a slow consumer that still answers, not a dead peer.
                if data or flags & FIN or t.seq != self.rcv % (1 << 32):
                    self.segment(ACK)
            self.changed.notify_all()

    def _answer_pings(self) -> None:
        """Pong every new ping of the Traffic Controller (a masked client frame, same payload), as
        noaa's gorilla client does: only the window, never a missing pong, may cut this consumer."""
        if self.fin_sent:  # no data after our own FIN (RFC 9293): the ping stays unanswered
            return
        pings = [payload for opcode, payload in frames(bytes(self.inbox)) if opcode == 9]
        for payload in pings[self.pongs:]:
            pong = Frame(Opcode.PONG, payload).serialize(mask=True, extensions=[])
            self.segment(PSH | ACK, pong)
            self.snd += len(pong)
        self.pongs = len(pings)

    def wait(self, test: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not test() and time.monotonic() < deadline:
                self.changed.wait(min(0.5, max(0.01, deadline - time.monotonic())))
            return bool(test())

    def connect(self, timeout: float = 5) -> bool:
        self.sniffer.start()
        time.sleep(0.3)  # the sniffer's sockets are open before the SYN goes
        for _ in range(3):
            self.segment(SYN)
            if self.wait(lambda: self.rcv is not None, timeout / 3):
                self.snd += 1
                self.segment(ACK)
                return True
        return False

    def write(self, data: bytes, pieces: list[tuple[int, int]] | None = None) -> int:
        """Send ``data`` as the segments ``pieces`` ((start, end) offsets, in the order given);
        one segment when None. Returns how many segments went out."""
        with self.changed:  # claim the sequence space first: a pong sent meanwhile goes after it
            base = self.snd
            self.snd += len(data)
        for start, end in pieces or [(0, len(data))]:
            self.segment(PSH | ACK, data[start:end], seq=base + start)
            time.sleep(0.05)  # separate segments on the wire, whatever the LB's stack coalesces
        return len(pieces or [0])


def scrambled(size: int) -> list[tuple[int, int]]:
    """The request as segments out of order and overlapping: the third and fourth quarters first,
    then the first quarter plus 10 bytes of the second, then the second quarter again from its start
    (10 bytes sent twice), then the last 20 bytes once more."""
    q = size // 4
    return [(2 * q, 3 * q), (3 * q, size), (0, q + 10), (q, 2 * q), (size - 20, size)]


def request(host: str, path: str, token: str, attempt: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: {token}\r\n"
            f"X-Harness-Attempt: {attempt}\r\n\r\n").encode()


def frames(inbox: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of the complete server frames after the 101's head (unmasked, RFC 6455)."""
    if b"\r\n\r\n" not in inbox:
        return []
    data, out, i = inbox.partition(b"\r\n\r\n")[2], [], 0
    while i + 2 <= len(data):
        length, start = data[i + 1] & 0x7F, i + 2
        if length == 126:
            length, start = int.from_bytes(data[i + 2:i + 4], "big"), i + 4
        elif length == 127:
            length, start = int.from_bytes(data[i + 2:i + 10], "big"), i + 10
        if start + length > len(data):
            break
        out.append((data[i] & 0x0F, data[start:start + length]))
        i = start + length
    return out


def binary_frames(inbox: bytes) -> int:
    return sum(1 for opcode, _ in frames(inbox) if opcode == 2)


def iptables(op: str, sport: int, tag: str) -> tuple[int, str]:
    rule = ["OUTPUT", "-p", "tcp", "--sport", str(sport), "--tcp-flags", "RST", "RST", "-m", "ttl", "--ttl-eq", "64",
            "-m", "comment", "--comment", tag, "-j", "DROP"]
    out = subprocess.run(["iptables", op, *rule], capture_output=True, text=True)
    return out.returncode, out.stdout + out.stderr


def run(args: argparse.Namespace) -> dict[str, Any]:
    dst = socket.gethostbyname(args.host)
    tcp = ScapyTcp(dst, args.port)
    tag = f"harness-{args.attempt}"
    code, out = iptables("-I", tcp.sport, tag)
    if code != 0:
        return {"error": f"iptables refused the RST rule: {out.strip()}"}
    try:
        return drive(tcp, args)
    finally:
        iptables("-D", tcp.sport, tag)
        tcp.sniffer.stop()


def drive(tcp: ScapyTcp, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"client": f"{tcp.sport}", "server": f"{tcp.dst}:{tcp.dport}", "mode": args.mode}
    if not tcp.connect():
        return {**result, "error": "no SYN-ACK"}
    data = request(args.host, args.path, args.token, args.attempt)
    result["request_segments"] = tcp.write(data, scrambled(len(data)) if args.mode == "segments" else None)
    tcp.wait(lambda: b"\r\n\r\n" in tcp.inbox or tcp.fin_at or tcp.rst_at, 10)
    status_line = bytes(tcp.inbox).split(b"\r\n", 1)[0].decode(errors="replace")
    result["status_line"] = status_line
    if not status_line.startswith("HTTP/1.1 101"):
        return result
    say("connected", status_line=status_line, sport=tcp.sport)
    tcp.wait(lambda: binary_frames(bytes(tcp.inbox)) >= args.frames or tcp.fin_at or tcp.rst_at, args.hold)
    result["frames_before"] = binary_frames(bytes(tcp.inbox))
    began = time.time()
    with tcp.changed:  # the sniffer thread sends pongs: our window and FIN must not interleave with them
        if args.mode == "zerowindow":
            tcp.window = 0
            tcp.segment(ACK)
        elif args.mode == "halfclose":
            tcp.fin_sent = True
            tcp.segment(FIN | ACK)
            tcp.snd += 1
    result["acted_at"] = began
    tcp.wait(lambda: tcp.fin_at or tcp.rst_at or os.path.exists(args.end_file), args.hold)
    result.update(fin_after_s=round(tcp.fin_at - began, 3) if tcp.fin_at else None,
                  rst_after_s=round(tcp.rst_at - began, 3) if tcp.rst_at else None, zero_window_acks=tcp.zero_acks,
                  frames=binary_frames(bytes(tcp.inbox)), bytes_received=len(tcp.inbox), pongs=tcp.pongs)
    say("held", **result)
    time.sleep(args.linger)  # the harness inspects the LB's sockets meanwhile
    # What the path did on its own ends here: anything after this RST may be its doing.
    result["reset_at"] = time.time()
    tcp.segment(RST | ACK)  # leave nothing behind on the LB, whatever state it is in
    return result


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="harness.cf tcppeer")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--path", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--attempt", default="")
    p.add_argument("--mode", choices=("segments", "inorder", "zerowindow", "openwindow", "halfclose", "hold"),
                   required=True)
    p.add_argument("--frames", type=int, default=3, help="binary frames to receive before acting")
    p.add_argument("--hold", type=float, default=15, help="how long to wait for each step")
    p.add_argument("--linger", type=float, default=0, help="seconds to keep the connection after 'held' (the "
                   "harness looks at the LB's sockets meanwhile), then reset it")
    p.add_argument("--end-file", default=END, help="stop holding once this file exists")
    args = p.parse_args(argv)
    conf.verb = 0
    say("listening", mode=args.mode, pid=os.getpid())
    say("result", **run(args))
