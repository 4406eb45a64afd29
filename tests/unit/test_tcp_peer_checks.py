"""The Scapy-peer judgements on recorded evidence: every row of each, the LB socket table parser on
``/proc/net/tcp`` text, and the scrambled request layout the peer sends."""

from __future__ import annotations

from typing import Any

import pytest

from harness.cf.tcppeer import scrambled
from harness.drivers import load_all
from harness.outcomes import Outcome
from harness.protocol.wire import TcpStream
from harness.tcp_peer_checks import (LbSockets, as_outcome, classify_half_close, classify_segments,
                                     classify_zero_window, lb_sockets, reordered, stalled_client_bound)
from harness.witness import Evidence

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
# LB 10.0.0.5:80 <- peer 10.0.0.2:50000 (ESTABLISHED, 98088 bytes unsent, inode 4242), and a socket to
# router 10.0.1.7:80 in CLOSE_WAIT held by the process (inode 4243).
PROC = HEADER + (
    "   0: 0500000A:0050 0200000A:C350 01 00017F28:00000000 01:00000010 00000000     0        0 4242 1 0\n"
    "   1: 0800010A:D431 0701010A:0050 08 00000000:00000000 00:00000000 00000000     0        0 4243 1 0\n")
ORPHANED = PROC.replace(" 01 00017F28", " 04 00017F28").replace(" 4242 ", " 0 ").replace(" 08 00000000", " 06 00000000")


def test_proc_net_tcp_is_read_as_the_lb_holding_both_sides() -> None:
    held = lb_sockets(PROC.replace("0701010A", "07010A0A"), "10.0.0.2:50000")
    assert held.client_side == "ESTABLISHED send-q 98088" and not held.freed
    close_wait = lb_sockets(PROC, "10.0.0.2:50000")
    assert close_wait.router_close_wait == 1
    freed = lb_sockets(ORPHANED, "10.0.0.2:50000")
    assert freed == LbSockets("FIN_WAIT1 orphan send-q 98088", 0) and freed.freed
    assert lb_sockets(HEADER, "10.0.0.2:50000").freed  # gone


def test_the_request_layout_is_out_of_order_and_overlapping() -> None:
    pieces = scrambled(200)
    assert {b for a, b in pieces} | {0} >= {0, 200} and pieces[0][0] > pieces[2][0]
    covered = sorted(pieces)
    assert covered[0][0] == 0 and any(b[0] < a[1] for a, b in zip(covered, covered[1:]))


def ev(result: dict[str, Any], tc: tuple[dict[str, Any], ...] = ()) -> Evidence:
    return Evidence("p1", 1.0, 2.0, {**result, "outcome": as_outcome(result)}, (), tc)


OK = {"status_line": "HTTP/1.1 101 Switching Protocols"}
OPENED = ({"event": "stream_open", "ts": 1.1},)
CUT = OPENED + ({"event": "slow_consumer", "ts": 1.2}, {"event": "stream_closed", "closed_by": "tc", "ts": 1.3})


def _stream(seqs: list[tuple[int, int]]) -> TcpStream:
    s = TcpStream(("10.0.0.2", 50000), ("10.0.0.5", 80))
    s.c2s_segments = {a: b"x" * (b - a) for a, b in seqs}
    return s


SCRAMBLED = _stream([(50, 100), (100, 200), (0, 60), (50, 100)])

CASES = [
    ("segments pass", lambda: classify_segments(ev({**OK, "frames_before": 3}, OPENED), SCRAMBLED, [50, 100, 0, 50]),
     Outcome.PASS),
    ("segments in order", lambda: classify_segments(ev({**OK, "frames_before": 3}, OPENED), _stream([(0, 200)]), [0]),
     Outcome.WIRE_NOT_REORDERED),
    ("segments not captured", lambda: classify_segments(ev({**OK, "frames_before": 3}, OPENED), None, []),
     Outcome.WIRE_NOT_REORDERED),
    ("segments no envelopes", lambda: classify_segments(ev({**OK, "frames_before": 0}, OPENED), SCRAMBLED,
                                                        [50, 100, 0, 50]), Outcome.INCOMPLETE),
    ("segments refused", lambda: classify_segments(ev({"status_line": "HTTP/1.1 400 Bad Request"}), None, []),
     Outcome.HANDSHAKE_REJECTED),
    ("no SYN-ACK", lambda: classify_segments(ev({"error": "no SYN-ACK"}), None, []), Outcome.CONNECT_TIMEOUT),
    ("zero window pass", lambda: classify_zero_window(ev({**OK, "zero_window_acks": 4}, CUT),
                                                      LbSockets(None, 0), 50.0, 60), Outcome.PASS),
    ("window never shut", lambda: classify_zero_window(ev({**OK, "zero_window_acks": 0}, CUT), LbSockets(None, 0),
                                                       1.0, 60), Outcome.IMPAIRMENT_NOT_APPLIED),
    ("never cut", lambda: classify_zero_window(ev({**OK, "zero_window_acks": 4}, OPENED), LbSockets("ESTABLISHED", 0),
                                               None, 60), Outcome.STILL_OPEN),
    ("LB holds on", lambda: classify_zero_window(ev({**OK, "zero_window_acks": 4}, CUT),
                                                 LbSockets("ESTABLISHED send-q 1", 0), None, 60),
     Outcome.LB_HOLDS_CONNECTION),
    ("LB frees too late", lambda: classify_zero_window(ev({**OK, "zero_window_acks": 4}, CUT), LbSockets(None, 0),
                                                       90.0, 60), Outcome.LB_HOLDS_CONNECTION),
    ("half-close pass", lambda: classify_half_close(ev({**OK, "fin_after_s": 0.2}, OPENED + (
        {"event": "stream_closed", "closed_by": "lost", "ts": 1.5},))), Outcome.PASS),
    ("half-close TC open", lambda: classify_half_close(ev({**OK, "fin_after_s": None}, OPENED)), Outcome.STILL_OPEN),
    ("half-close client left hanging", lambda: classify_half_close(ev({**OK, "fin_after_s": None, "rst_after_s": None},
                                                                      OPENED + ({"event": "stream_closed",
                                                                                 "closed_by": "lost", "ts": 1.5},))),
     Outcome.LB_HOLDS_CONNECTION),
]


@pytest.mark.parametrize("case, classify, outcome", CASES, ids=[c[0] for c in CASES])
def test_each_row_reports_its_own_outcome(case: str, classify: Any, outcome: Outcome) -> None:
    assert classify().outcome is outcome, classify()


def test_reordering_needs_both_backwards_and_overlap() -> None:
    assert reordered(_stream([(0, 50), (50, 100)]), [0, 50])[0] is False  # in order, no overlap
    assert reordered(_stream([(50, 100), (0, 50)]), [50, 0])[0] is False  # backwards, no overlap
    assert reordered(SCRAMBLED, [50, 100, 0, 50])[0] is True


def test_the_peer_reads_server_frames_and_pongs_pings() -> None:
    from harness.cf.tcppeer import binary_frames, frames

    head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    stream = head + b"\x89\x02hi" + b"\x82\x7e\x00\x80" + b"x" * 128 + b"\x82\x05abc"  # the last one cut short
    assert frames(stream) == [(9, b"hi"), (2, b"x" * 128)]
    assert binary_frames(stream) == 1 and frames(b"HTTP/1.1 101") == []


def test_the_stalled_client_bound_comes_from_driver_data() -> None:
    """HAProxy in mode http runs timeout tunnel, then timeout client-fin (= timeout client here) on
    a client that stopped reading: its driver says two idle timeouts; mode tcp and any other LB one."""
    drivers = load_all()
    assert stalled_client_bound(60, drivers["haproxy"].vars, "http") == 120
    assert stalled_client_bound(60, drivers["haproxy"].vars, "tcp") == 60
    assert stalled_client_bound(60, drivers["nginx"].vars, "http") == 60
    assert stalled_client_bound(4, drivers["elb"].vars, "tcp") == 4
