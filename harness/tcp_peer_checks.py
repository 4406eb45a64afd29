"""Checks driven by a client whose TCP is Scapy's (``harness.cf.tcppeer``), judged from one
attempt's evidence: the peer's own account, the Traffic Controller's events for the attempt, the
client probe's pcap of that connection and the LB's sockets (``ss`` in its namespace). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.outcomes import Observation, Outcome
from harness.protocol import wire
from harness.verdicts import classify_handshake
from harness.witness import Evidence


def as_outcome(result: dict[str, Any]) -> dict[str, Any]:
    """The peer's result in the shape ``harness.verdicts.classify_handshake`` reads."""
    line = str(result.get("status_line") or "")
    parts = line.split(" ")
    status = int(parts[1]) if line.startswith("HTTP/") and len(parts) > 1 and parts[1].isdigit() else None
    if status == 101:
        return {"connected": True}
    if status is not None:
        return {"connected": False, "error_kind": "handshake_status", "handshake_status": status, "error": line}
    if result.get("error"):
        return {"connected": False, "error_kind": "connect_timeout" if "SYN" in result["error"] else "handshake_failed",
                "error": result["error"]}
    return {"connected": False, "error_kind": "handshake_timeout", "error": "no answer to the request"}


def reordered(stream: wire.TcpStream | None, order: list[int]) -> tuple[bool, str]:
    """Did the request cross the client's wire out of order and overlapping? ``order``: the
    sequence numbers of the stream's client segments in capture order."""
    if stream is None:
        return False, "the connection is not in the client's pcap"
    spans = sorted((seq, seq + len(data)) for seq, data in stream.c2s_segments.items())
    overlap = any(b_start < a_end for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    backwards = any(b < a for a, b in zip(order, order[1:]))
    return backwards and overlap, f"{len(order)} segments, backwards: {backwards}, overlapping: {overlap}"


def classify_segments(ev: Evidence, stream: wire.TcpStream | None, order: list[int]) -> Observation:
    """``tcp_peer_segments``: the request in out-of-order, overlapping segments still upgrades and
    the stream carries envelopes; the wire must show the scrambling, or the check tested nothing."""
    if failed := classify_handshake(ev):
        return failed
    ok, detail = reordered(stream, order)
    if not ok:
        return Observation(Outcome.WIRE_NOT_REORDERED, detail)
    frames = int(ev.client.get("frames_before") or 0)
    if not ev.tc_events("stream_open") or frames == 0:
        return Observation(Outcome.INCOMPLETE, f"{frames} envelopes; TC opened: {bool(ev.tc_events('stream_open'))}")
    return Observation(Outcome.PASS, f"101 and {frames} envelopes; {detail}")


#: The LB's sockets are read every 2 s, and its idle timer started at its last write, before the
#: cut: freed within its idle timeout of the cut, give or take one read and the clocks.
POLL_SLACK_S = 5.0
#: /proc/net/tcp state codes (include/net/tcp_states.h).
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
              7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


@dataclass(frozen=True)
class LbSockets:
    """The LB's sockets of one stream, from ``/proc/net/tcp`` in its namespace."""

    client_side: str | None  # state of the socket to the peer (None: gone); "orphan" when no process holds it
    router_close_wait: int  # sockets to routers that the routers closed and the LB process still holds

    @property
    def freed(self) -> bool:
        held = self.client_side is not None and "orphan" not in self.client_side and \
            self.client_side.split()[0] in ("ESTABLISHED", "CLOSE_WAIT")
        return not held and self.router_close_wait == 0


def _address(field: str) -> str:
    """``0100007F:0050`` (IPv4 in host byte order on little-endian kernels) -> ``127.0.0.1:80``."""
    ip, port = field.split(":")
    return ".".join(str(int(ip[i:i + 2], 16)) for i in (6, 4, 2, 0)) + f":{int(port, 16)}"


def lb_sockets(proc_net_tcp: str, peer: str, router_ports: tuple[int, ...] = (80, 443)) -> LbSockets:
    """Parse ``/proc/net/tcp``: the socket whose remote end is ``peer`` (ip:port), and sockets in
    CLOSE_WAIT towards router ports still owned by a process (inode != 0)."""
    client, close_wait = None, 0
    for line in proc_net_tcp.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 10:
            continue
        remote, state, inode = _address(cols[2]), TCP_STATES.get(int(cols[3], 16), cols[3]), cols[9]
        orphan = inode == "0"
        if remote == peer:
            client = f"{state}{' orphan' if orphan else ''} send-q {int(cols[4].split(':')[0], 16)}"
        elif state == "CLOSE_WAIT" and not orphan and int(remote.rsplit(":", 1)[1]) in router_ports:
            close_wait += 1
    return LbSockets(client, close_wait)


def classify_zero_window(ev: Evidence, lb: LbSockets | None, freed_after_s: float | None,
                         idle_timeout: float) -> Observation:
    """``tcp_peer_zero_window``: a consumer that stops opening its window must be cut by the TC
    (5 s slow-consumer limit) and the LB must then let go of both sides, at the latest when its idle
    timeout runs out (no byte can move either way). ``freed_after_s``: seconds from the TC's cut
    until the LB's sockets were seen freed (``lb``: their last state), None if never."""
    if failed := classify_handshake(ev):
        return failed
    if not ev.client.get("zero_window_acks"):
        return Observation(Outcome.IMPAIRMENT_NOT_APPLIED, "no ACK with a zero window went out")
    if not ev.tc_events("slow_consumer"):
        return Observation(Outcome.STILL_OPEN, f"TC never cut the consumer; closed by {ev.tc_closed_by()}")
    state = f"LB client side {lb.client_side if lb else '?'}, router sides in CLOSE_WAIT " \
            f"{lb.router_close_wait if lb else '?'}"
    if freed_after_s is None or freed_after_s > idle_timeout + POLL_SLACK_S:
        return Observation(Outcome.LB_HOLDS_CONNECTION, f"not freed {idle_timeout:g} s (the LB's timeouts) after "
                                                        f"the TC's cut: {state}")
    return Observation(Outcome.PASS, f"TC cut the slow consumer; LB freed both sides {freed_after_s:.1f} s later "
                                     f"({state})")


def classify_half_close(ev: Evidence) -> Observation:
    """``tcp_peer_half_close``: after the client's FIN the path ends the stream end to end, as
    gorouter's ForwardIO does (both connections closed when one copy ends): the TC sees the stream
    end, and the client gets the LB's FIN or RST."""
    if failed := classify_handshake(ev):
        return failed
    tc = ev.tc_closed_by()
    if tc is None:
        return Observation(Outcome.STILL_OPEN, "the TC's stream stayed open after the client's FIN")
    fin, rst = ev.client.get("fin_after_s"), ev.client.get("rst_after_s")
    if fin is None and rst is None:
        return Observation(Outcome.LB_HOLDS_CONNECTION, f"TC closed ({tc}) but the client got neither FIN nor RST")
    return Observation(Outcome.PASS, f"TC closed by {tc}; client got {'FIN' if fin is not None else 'RST'} after "
                                     f"{fin if fin is not None else rst} s")


def stalled_client_bound(idle_timeout: float, driver_vars: dict[str, Any], protocol: str) -> float:
    """Seconds after the TC's cut within which the LB must have let go of a client that stopped
    reading: its idle timeout, times the driver's ``stalled_client_idle_timeouts`` for the
    listener's protocol where the LB runs more than one timer in turn (HAProxy in mode http:
    timeout tunnel, then timeout client-fin)."""
    factor = (driver_vars.get("stalled_client_idle_timeouts") or {}).get(protocol, 1)
    return idle_timeout * float(factor)
