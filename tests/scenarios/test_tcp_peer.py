"""Scapy as the TCP peer, not only as a witness: a client whose TCP is Scapy's own
(``harness.cf.tcppeer``, in the client's namespace, the kernel's RSTs for its port dropped) drives
the handshake and the stream through each LB on port 80: the request in out-of-order and
overlapping segments, a zero receive window mid-stream (a TCP-level slow consumer), and a
half-close. Each attempt's pcap (the client probe's packets of its window) is written next to the
run's evidence and named in the verdict.
"""

from __future__ import annotations

import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import pytest

from harness.background import Background
from harness.capture import listening_run, signal_process
from harness.cf.agent import CF
from harness.cf.tcppeer import END
from harness.deployment import APP_GUID, OTHER_APP_GUID, Deployment
from harness.outcomes import Observation
from harness.protocol import wire
from harness.tcp_peer_checks import (POLL_SLACK_S, LbSockets, as_outcome, classify_half_close, classify_segments,
                                     classify_zero_window, lb_sockets, stalled_client_bound)
from harness.timeouts import scaled
from harness.witness import Evidence

#: On by default; HARNESS_TCP_PEER=0 skips them (and their controls).
ENABLED = os.environ.get("HARNESS_TCP_PEER", "1") != "0"
#: The LBs' idle timeout in these cells. What the zero-window check judges is the LB's own timer
#: freeing a stalled client after the TC's cut, against the timeout it is configured with; at the
#: topologies' 60 s the LBs held the Scapy groups 110-170 s (HAProxy in mode http runs two timers in
#: turn), the longest waits of a qualification. 20 s still leaves the TC's 5 s slow-consumer cut well
#: ahead of the LB's timer, so the LB's timer never ends the stream before the TC's cut does.
LB_IDLE_S = 20
pytestmark = [*(pytest.mark.topology(name, lb_idle=LB_IDLE_S) for name in ("http-upgrade", "tcp-same-port")),
              # the three attempts run at once, up to the LB's stalled-client bound (HAProxy http: 2 x 20 s)
              pytest.mark.waits(20, group="tcp-peer"),
              pytest.mark.skipif(not ENABLED, reason="Scapy-peer checks skipped: HARNESS_TCP_PEER=0")]
#: The app whose stream an attempt reads, with the token allowed to read it. The zero-window flood
#: goes to the other app, so attempts running at the same time do not share it.
APP, FLOODED_APP = (APP_GUID, "bearer dev"), (OTHER_APP_GUID, "bearer other")
Verdict = Callable[..., None]
#: Envelopes of 60 KB sent in bursts once the window is shut, until the TC cuts the consumer or
#: FLOOD bursts went out: the path's socket buffers must fill before TC's writer blocks, and how much
#: they hold is the host's, not ours (measured: with net.ipv4.tcp_rmem max 32 MB a router took 14.1 MB
#: from the TC and passed 1.66 MB on; one fixed 18 MB flood then never blocked the TC's writer).
FLOOD_BURST = 100
FLOOD = 10
#: How long the peer waits for the LB's FIN/RST after it acted: TC cuts after 5 s, then waits up to
#: websockets' 10 s close timeout for a close frame that cannot cross a shut window.
HOLD_S = 25


class PeerRun:
    """One Scapy peer attempt: the client node runs it (through its agent, in its namespace), its
    JSON lines, its window."""

    def __init__(self, dep: Deployment, mode: str, *, hold: float = HOLD_S, linger: float = 0,
                 app: tuple[str, str] = APP) -> None:
        self.dep, self.attempt, self.started, self.app = dep, secrets.token_hex(6), time.time(), app[0]
        dep.nodes["client"].taint()  # its iptables rule in the client's namespace, until the peer ends
        self.end_file = f"{END}-{self.attempt}"  # peers of a cell run side by side in the one client
        args = ["--host", dep.topology.fqdn("doppler"), "--port", "80", "--path", f"/apps/{app[0]}/stream",
                "--token", app[1], "--attempt", self.attempt, "--mode", mode, "--hold", str(scaled(hold)),
                "--linger", str(linger), "--end-file", self.end_file]
        self.run, listening = listening_run(dep.nodes["client"], [*CF, "tcppeer", *args], "its Scapy peer",
                                            attempt=self.attempt)
        self.pid = int(listening["pid"])

    def lines(self) -> list[dict[str, Any]]:
        return list(self.run.lines)

    def wait(self, event: str, timeout: float) -> dict[str, Any] | None:
        """The peer's last line with this event, waiting at most ``timeout`` s (0: look once)."""
        self.run.wait_event(event, timeout)
        found = [line for line in self.lines() if line.get("event") == event]
        return found[-1] if found else None

    def end(self) -> None:
        """Tell the peer to stop holding (it then resets the connection and reports)."""
        self.dep.nodes["client"].exec(["python3", "-c", f"open({self.end_file!r}, 'a').close()"])

    def finish(self, *, before_reset: bool = False) -> tuple[Evidence, list[Any]]:
        """The attempt's evidence (peer result, routers' records, TC events) and its packets; with
        ``before_reset``, only the TC events logged before the peer sent its final RST (which ends
        everything anyway), by the peer's own clock (the same kernel's)."""
        result = self.wait("result", HOLD_S * 2 + 30)
        if result is None:  # it hangs: interrupt it (it removes its iptables rule on the way out)
            signal_process(self.dep.nodes["client"], self.pid, "SIGINT")
            result = {"error": "the peer gave no result"}
        ended = time.time()
        until = float(result.get("reset_at") or ended) if before_reset else ended
        witness = self.dep.witness
        tc = [e for e in witness.tc_events(self.attempt, self.started, ended) if float(e["ts"]) < until]
        ev = Evidence(self.attempt, self.started, ended, {**result, "outcome": as_outcome(result)},
                      tuple(witness.router_records(self.attempt, self.started, ended)), tuple(tc))
        return ev, self.dep.probe("client").packets(self.started - 1, ended + 1)


def pcap(dep: Deployment, name: str, attempt: str, packets: list[Any]) -> str:
    """Write this attempt's packets where the run keeps evidence; returns the path."""
    from scapy.utils import wrpcap

    folder = (dep.results_dir or Path("results")) / "evidence" / "tcp-peer"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dep.topology.name}-{dep.topology.load_balancers[0].driver}-{name}-{attempt}.pcap"
    wrpcap(str(path), packets)
    return str(path)


def peer_stream(packets: list[Any], sport: int) -> tuple[wire.TcpStream | None, list[int]]:
    """The peer's connection in the pcap, and its client segments' sequence numbers in capture order."""
    stream = next((s for s in wire.streams(packets) if s.client[1] == sport), None)
    order = [int(p["TCP"].seq) for p in packets if p.haslayer("TCP") and p["TCP"].sport == sport
             and len(bytes(p["TCP"].payload))]
    return stream, order


def segments_attempt(dep: Deployment, mode: str, app: tuple[str, str] = APP) -> tuple[Observation, dict[str, Any]]:
    run = PeerRun(dep, mode, hold=10, app=app)
    if run.wait("connected", 20):
        dep.emit(5, app=run.app)
    ev, packets = run.finish()
    stream, order = peer_stream(packets, int(ev.client.get("client") or 0))
    seen = classify_segments(ev, stream, order)
    return seen, {"attempt": ev.attempt, "pcap": pcap(dep, mode, ev.attempt, packets),
                  "status_line": ev.client.get("status_line"), "segments_sent": ev.client.get("request_segments")}


@pytest.mark.check("tcp_peer_segments")
def test_request_in_out_of_order_overlapping_segments(deployment: Deployment, verdict: Verdict) -> None:
    seen, facts = peer_attempt(deployment, "segments")
    verdict("tcp_peer_segments", seen, **facts)


def lb_socket_state(dep: Deployment, peer: str) -> LbSockets:
    """The LB's sockets from ``/proc/net/tcp`` in its namespace (per namespace: the LB's own, read
    by its node if of the CF image, else by the cell's helper there, through the agent either way:
    read every 2 s, a ``docker exec`` each was ~0.06 CPU-s of the engine's)."""
    read = "import sys; sys.stdout.write(open('/proc/net/tcp').read())"
    code, out = dep.runner(dep.topology.dns["doppler"]).exec(["python3", "-c", read])
    assert code == 0, out
    return lb_sockets(out, peer)


#: Seconds to keep watching the LB's sockets past its idle timeout (to measure an LB that holds on).
WATCH_EXTRA_S = float(os.environ.get("HARNESS_TCP_PEER_WATCH_S", "0"))
#: A consumer that keeps its window open is never cut: the control stops waiting for a cut here.
NO_CUT_S = 30


def flood_until_cut(dep: Deployment, run: PeerRun, bursts: int) -> None:
    """Emit bursts of 60 KB envelopes until the TC has cut this attempt's consumer (or ``bursts`` ran out)."""
    for _ in range(bursts):
        if any(e["event"] == "slow_consumer" for e in dep.witness.tc_events(run.attempt, run.started, time.time())):
            return
        dep.emit(FLOOD_BURST, size=60_000, app=run.app)


def zero_window_attempt(dep: Deployment, mode: str, *, flood: int = FLOOD,
                        app: tuple[str, str] = FLOODED_APP) -> tuple[Observation, dict[str, Any]]:
    """The peer shuts its window after 3 envelopes while 6 MB bursts follow until the TC cuts it;
    the LB's sockets are read every 2 s until the LB let go of both sides, or its timeouts (the
    driver's bound, plus slack) after the cut are over."""
    lb = dep.topology.lb(dep.topology.dns["doppler"])
    protocol = next((listener.protocol for listener in lb.listeners if listener.port == 80), "http")
    idle = stalled_client_bound(lb.idle_timeout, dep.drivers[lb.driver].vars, protocol)
    run = PeerRun(dep, mode, hold=idle + 150, app=app)
    flooding, sockets, cut_at, freed_at = None, None, None, None
    connected = run.wait("connected", 20)
    if connected:
        dep.emit(5, app=run.app)
        flooding = Background(flood_until_cut, dep, run, flood)  # its errors fail the test at the join
        peer, began = f"{dep.client_ip()}:{connected['sport']}", time.monotonic()
        deadline = began + scaled(idle + 45)
        while time.monotonic() < deadline and not run.wait("result", 0):
            sockets = lb_socket_state(dep, peer)
            cut = dep.witness.tc_events(run.attempt, run.started, time.time())
            if cut_at is None and (cut_at := next((float(e["ts"]) for e in cut if e["event"] == "slow_consumer"),
                                                  None)):  # judged up to the LB's idle timeout after the cut
                deadline = max(deadline, time.monotonic() + scaled(idle + POLL_SLACK_S + 5 + WATCH_EXTRA_S))
            if cut_at and sockets.freed:
                freed_at = time.time()
                break
            if cut_at is None and time.monotonic() - began > scaled(NO_CUT_S) and not flooding.is_alive():
                break
            time.sleep(2)
    run.end()
    ev, packets = run.finish()
    if flooding:
        flooding.join(60)
    freed_after = round(freed_at - cut_at, 1) if freed_at and cut_at else None
    seen = classify_zero_window(ev, sockets, freed_after, idle)
    return seen, {"attempt": ev.attempt, "pcap": pcap(dep, mode, ev.attempt, packets), "freed_after_cut_s": freed_after,
                  "lb_client_side": sockets.client_side if sockets else None,
                  "zero_window_acks": ev.client.get("zero_window_acks"), "tc": [e["event"] for e in ev.tc]}


@pytest.mark.check("tcp_peer_zero_window")
def test_zero_window_mid_stream(deployment: Deployment, verdict: Verdict) -> None:
    seen, facts = peer_attempt(deployment, "zerowindow")
    verdict("tcp_peer_zero_window", seen, **facts)


def half_close_attempt(dep: Deployment, mode: str, app: tuple[str, str] = APP) -> tuple[Observation, dict[str, Any]]:
    """The peer sends its FIN after 3 envelopes and waits 10 s for the LB's FIN or RST, then lingers
    3 s; judged on what the TC logged before the peer's final RST (a close the RST caused is not the
    path's doing). Under load the TC may log its close after the client saw the LB's FIN."""
    run = PeerRun(dep, mode, hold=10, linger=3, app=app)
    if run.wait("connected", 20):
        dep.emit(5, app=run.app)
    ev, packets = run.finish(before_reset=True)
    seen = classify_half_close(ev)
    return seen, {"attempt": ev.attempt, "pcap": pcap(dep, mode, ev.attempt, packets),
                  "fin_after_s": ev.client.get("fin_after_s"), "rst_after_s": ev.client.get("rst_after_s"),
                  "tc_closed_by": ev.tc_closed_by()}


@pytest.mark.check("tcp_peer_half_close")
def test_half_close_from_the_client(deployment: Deployment, verdict: Verdict) -> None:
    seen, facts = peer_attempt(deployment, "halfclose")
    verdict("tcp_peer_half_close", seen, **facts)


Attempt = Callable[[], tuple[Observation, dict[str, Any]]]


def concurrently(dep: Deployment, key: str, attempts: dict[str, Attempt],
                 name: str) -> tuple[Observation, dict[str, Any]]:
    """Run a cell's peer attempts at once (each has its own source port, attempt id and window) and
    keep their results on the deployment, so each check of the cell reads its own (``name``) without
    waiting for the others in turn. An attempt that crashed raises in the check that reads it."""
    cache = getattr(dep, key, None)
    if cache is None:
        with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
            futures = {each: pool.submit(attempt) for each, attempt in attempts.items()}
        cache = {each: future.exception() or future.result() for each, future in futures.items()}
        setattr(dep, key, cache)
    if isinstance(cache[name], BaseException):
        raise cache[name]
    return cache[name]  # type: ignore[no-any-return]


def peer_attempt(dep: Deployment, name: str) -> tuple[Observation, dict[str, Any]]:
    """The three checks' attempts of this cell, at once: segments and half-close read one app's
    stream, the zero-window attempt floods the other's."""
    return concurrently(dep, "_tcp_peer_attempts", {
        "segments": lambda: segments_attempt(dep, "segments"),
        "zerowindow": lambda: zero_window_attempt(dep, "zerowindow"),
        "halfclose": lambda: half_close_attempt(dep, "halfclose")}, name)
