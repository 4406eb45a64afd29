"""What should happen in a matrix cell (from the seed's rules) and what did happen (from evidence).

Both sides speak the same small vocabulary of outcomes, so a check passes when the observed outcome
equals the expected one, and an expected failure is asserted as the specific failure it must be.
Pure functions: unit-tested without Docker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from harness.drivers import Driver
from harness.outcomes import Observation, Outcome
from harness.protocol import wire
from harness.protocol.headers import get, has_token
from harness.topology import Listener, LoadBalancer, Topology
from harness.witness import Evidence

PASS = Outcome.PASS


def diagnosis(outcome: str) -> str:
    try:
        return Outcome(outcome).diagnosis
    except ValueError:
        return outcome


@dataclass(frozen=True)
class Expectation:
    outcome: Outcome
    because: str  # the seed rule or fact that predicts it


def _listener(lb: LoadBalancer, port: int) -> Listener | None:
    return next((lst for lst in lb.listeners if lst.port == port), None)


def _through(topo: Topology, driver_of: dict[str, Driver], label: str, port: int, *, websocket: bool) -> Expectation:
    """Predict a request to ``<label>`` on ``port`` through the LB the topology's DNS names."""
    lb = topo.lb(topo.dns[label])
    listener = _listener(lb, port)
    if listener is None:
        return Expectation(Outcome.DIAL_REFUSED, f"LB '{lb.name}' has no listener on {port}")
    if listener.protocol == "http":
        driver = driver_of[lb.name]
        if websocket and not driver.passes_upgrade:
            return Expectation(Outcome(driver.upgrade_failure),
                               f"driver '{driver.name}' cannot pass Upgrade in HTTP mode")
        return Expectation(PASS, "HTTP mode" + (" with Upgrade passed" if websocket else ""))
    if lb.proxy_protocol == "v2" or (lb.proxy_protocol == "v1" and not topo.router_proxy_protocol):
        return Expectation(Outcome.PROXY_HEADER_REJECTED, f"gorouter cannot read this PROXY {lb.proxy_protocol} header")
    return Expectation(PASS, "TCP mode passes the client's bytes")


def expected(topo: Topology, drivers: dict[str, Driver], keepalive_interval: float = 15.0,
             keepalive_timeout: float = 30.0) -> dict[str, Expectation]:
    """Per check, what the seed says this cell must show. ``topo`` is bound to concrete drivers;
    ``keepalive_interval`` is the Traffic Controller's pause between pings."""
    driver_of = {lb.name: drivers[lb.driver] for lb in topo.load_balancers}
    ws = _through(topo, driver_of, "doppler", topo.logger_port, websocket=True)
    plain_doppler = _through(topo, driver_of, "doppler", topo.logger_port, websocket=False)
    app = _through(topo, driver_of, "echo", 80, websocket=False)
    out = {
        "logs": ws,
        "firehose": ws,
        "recent_logs": plain_doppler,
        # TC's auth middleware runs before the handshake checks: a stripped Upgrade still gets 401/404.
        "auth_401": plain_doppler if ws.outcome == "upgrade_stripped" else ws,
        "auth_404": plain_doppler if ws.outcome == "upgrade_stripped" else ws,
        "xfp": app,
        "xff": app,
    }
    # Faults on the client<->LB link: TCP survives latency, slicing and a re-dial after a reset;
    # a byte budget or a black hole must end in a diagnosed failure, not a hang.
    for check in ("fault_latency", "fault_slicer", "fault_reset_gap", "router_death", "kernel_loss",
                  "kernel_bandwidth", "kernel_pause", "kernel_delay"):
        out[check] = ws
    on_80 = _through(topo, driver_of, "doppler", 80, websocket=True)
    out["on_wire"] = Expectation(on_80.outcome, "on the wire: " + on_80.because)
    if on_80.outcome == Outcome.HANDSHAKE_REJECTED:  # the LB answers the handshake itself: no router sees it
        out["on_wire"] = Expectation(Outcome.NOT_CAPTURED, "on the wire: the LB answers the handshake itself "
                                                           "(" + on_80.because + "): nothing reaches a router")
    out["crafted_split_handshake"] = ws
    out["crafted_header_casing"] = ws
    for check in ("frame_log_line", "frame_fragments", "frame_ping_pong", "frame_close_codes", "frame_pipelined",
                  "frame_upgrade_casing"):  # frame fidelity through the LB (harness.frame_checks)
        out[check] = ws
    ws_driver = driver_of[topo.lb(topo.dns["doppler"]).name]
    if ws.outcome == PASS and ws_driver.vars.get("drops_pipelined_upgrade_data") and \
            _listener(topo.lb(topo.dns["doppler"]), topo.logger_port).protocol == "http":  # type: ignore[union-attr]
        out["frame_pipelined"] = Expectation(Outcome.PIPELINED_DATA_LOST, f"driver '{ws_driver.name}' drops data "
                                                                           "written behind the upgrade request (measured)")
    out["tcp_peer_segments"] = on_80  # Scapy as the TCP peer on port 80 (harness.tcp_peer_checks)
    out["tcp_peer_zero_window"] = on_80 if on_80.outcome != PASS else Expectation(
        PASS, "TC cuts a consumer that takes nothing for 5 s; the LB then lets go of both sides")
    out["tcp_peer_half_close"] = on_80 if on_80.outcome != PASS else Expectation(
        PASS, "gorouter ends both connections when one copy ends; the LB passes the end on")
    if on_80.outcome == PASS and ws_driver.vars.get("holds_stalled_client"):  # measured, see the driver file
        out["tcp_peer_zero_window"] = Expectation(Outcome.LB_HOLDS_CONNECTION, f"driver '{ws_driver.name}' keeps a "
                                                  "client that reads nothing past its idle timeout (measured)")
    out["crafted_rst"] = ws if ws.outcome != PASS else Expectation(
        Outcome.HALF_OPEN, "a RST to the LB ends the LB's and TC's side; nothing tells the client")
    out["kernel_reset"] = ws if ws.outcome != PASS else Expectation(Outcome.STREAM_CUT, "the LB's kernel answers with RST")
    out["fault_limit_data"] = ws if ws.outcome != PASS else Expectation(Outcome.STREAM_CUT, "limit_data closes the link")
    out["fault_timeout"] = ws if ws.outcome != PASS else Expectation(Outcome.HANDSHAKE_TIMEOUT, "timeout toxic holds data")
    out["kernel_blackhole"] = out["kernel_partition"] = ws if ws.outcome != PASS else Expectation(
        Outcome.KEEPALIVE_1008, "silent drop: only the Traffic Controller's keepalive notices")
    own_cut = driver_of[topo.lb(topo.dns["doppler"]).name]
    tc_notices_s = keepalive_interval + keepalive_timeout  # the next ping, then its pong's deadline
    if ws.outcome == PASS and not own_cut.honours_idle_timeout and own_cut.default_idle_timeout is not None \
            and own_cut.default_idle_timeout + KEEPALIVE_MARGIN_S <= tc_notices_s:
        # an LB whose own idle cut comes before the TC's keepalive cuts the silent stream itself (a
        # cell whose TC pings every 1 s with a 4 s deadline notices first: measured 5.2-5.7 s vs
        # caddy-read-timeout's 10 s)
        out["kernel_blackhole"] = out["kernel_partition"] = Expectation(
            Outcome.STREAM_CUT, f"driver '{own_cut.name}' cuts idle streams after {own_cut.default_idle_timeout:g} s, "
                                f"before the Traffic Controller's keepalive (~{tc_notices_s:g} s)")
    ws_lb = topo.lb(topo.dns["doppler"])
    if ws.outcome != PASS:
        out["idle"] = ws
    elif keepalive_interval < ws_lb.idle_timeout:
        out["idle"] = Expectation(PASS, f"pings every {keepalive_interval:g} s < LB idle timeout {ws_lb.idle_timeout:g} s")
    else:
        out["idle"] = Expectation(Outcome.IDLE_CUT, f"pings every {keepalive_interval:g} s >= LB idle timeout "
                                              f"{ws_lb.idle_timeout:g} s")
    # The noaa-faithful client: Go's TCP keepalive draws the LB's RST 15-30 s after a reset.
    out["rst_keepalive"] = ws if ws.outcome != PASS else Expectation(
        PASS, "noaa's Go-default TCP keepalive (15 s) draws a RST from the LB; noaa re-dials")
    # PROXY v1 on the routers' TLS listener (gorouter: TLS inside PROXY), dialled on 443 directly.
    out["proxy_v1_tls"] = _through(topo, driver_of, "doppler", 443, websocket=True)
    lb = topo.lb(topo.dns["echo"])
    listener = _listener(lb, 80)
    if app.outcome == PASS and listener and listener.protocol == "tcp" and lb.proxy_protocol == "none":
        out["xff"] = Expectation(Outcome.LB_IP_AS_CLIENT, "TCP mode without PROXY protocol hides the client address")
    if app.outcome == PASS and "client-lb" in topo.faults:
        out["xff"] = Expectation(Outcome.PROXY_IP_AS_CLIENT, "the client<->LB fault proxy is a TCP hop")
    tls_listener = _listener(lb, 443)
    if app.outcome == PASS and tls_listener and tls_listener.protocol == "tcp" and tls_listener.tls:
        out["xfp"] = Expectation(Outcome.XFP_WRONG, "TLS is cut before a TCP-mode hop: the routers get plain HTTP and "
                                                   "set X-Forwarded-Proto http on 443")
    out["idle_measured"] = expected_idle_measured(ws, driver_of[ws_lb.name])

    out.update(expected_log_readers(topo, driver_of))
    return out


# ---- observed outcomes: classification tables over one attempt's evidence ---------------------------
#
# Each table is an ordered list of (outcome, test) rows; the first row whose test holds wins. The
# rows match the specific evidence of each failure (the PROXY signature in the bytes a router got, a
# connect timeout apart from a handshake timeout, a discovery failure apart from a handshake status),
# so a check reports the failure it saw, never a neighbour's.

Rule = tuple[Outcome, Callable[[Evidence], bool]]


def _kind(ev: Evidence) -> str | None:
    return ev.outcome.get("error_kind") or ev.client.get("error_kind")


def _status(ev: Evidence) -> int | None:
    status = ev.outcome.get("handshake_status", ev.client.get("status"))
    return int(status) if status is not None else None


HANDSHAKE_RULES: tuple[Rule, ...] = (
    # The router's own record of this attempt: a 400 to bytes that began with a PROXY header (the
    # discovery request meets it first when /v2/info goes through the same listener).
    (Outcome.PROXY_HEADER_REJECTED, lambda ev: _status(ev) == 400 and ev.proxy_header_rejected()),
    # On the routers' TLS listener the same header breaks the TLS handshake (no HTTP answer); the
    # router's record is bound to this attempt by the client address the PROXY line names.
    (Outcome.PROXY_HEADER_REJECTED, lambda ev: _kind(ev) == "handshake_failed" and ev.proxy_header_broke_tls()),
    (Outcome.DISCOVERY_FAILED, lambda ev: _kind(ev) == "discovery"),
    (Outcome.DNS_FAILED, lambda ev: _kind(ev) == "dns"),
    (Outcome.DIAL_REFUSED, lambda ev: _kind(ev) == "connect_refused"),
    (Outcome.CONNECT_TIMEOUT, lambda ev: _kind(ev) in ("connect_timeout", "connect_error")),
    (Outcome.HANDSHAKE_TIMEOUT, lambda ev: _kind(ev) == "handshake_timeout"),
    # A router got this attempt's handshake without Upgrade and TC rejected it with 400.
    (Outcome.UPGRADE_STRIPPED, lambda ev: _status(ev) == 400 and ev.router_saw_upgrade() is False
     and bool(ev.tc_events("handshake_rejected"))),
    (Outcome.HANDSHAKE_REJECTED, lambda ev: _kind(ev) == "handshake_status"),
    (Outcome.HANDSHAKE_FAILED, lambda ev: _kind(ev) is not None or not ev.outcome.get("connected")),
)


def first_match(rules: tuple[Rule, ...], ev: Evidence) -> Outcome | None:
    return next((outcome for outcome, test in rules if test(ev)), None)


def _handshake_detail(ev: Evidence) -> str:
    out = ev.outcome
    status = _status(ev)
    return f"status {status}" if status is not None else str(out.get("error") or ev.client.get("error") or "")


def classify_handshake(ev: Evidence) -> Observation | None:
    """Why the attempt never got a stream, or None when it connected."""
    outcome = first_match(HANDSHAKE_RULES, ev)
    return Observation(outcome, _handshake_detail(ev)) if outcome else None


def classify_stream(ev: Evidence, expect: int) -> Observation:
    """A stream that should carry ``expect`` envelopes (0: only connect and hold)."""
    if failed := classify_handshake(ev):
        return failed
    out, delivery = ev.outcome, ev.client.get("delivery") or {}
    if expect == 0 or (delivery.get("unique") == expect and delivery.get("lost") == 0):
        if delivery.get("out_of_order"):
            return Observation(Outcome.OUT_OF_ORDER, f"{delivery['out_of_order']} out of order")
        return Observation(Outcome.PASS, f"{delivery.get('unique', 0)}/{expect}" if expect else "connected")
    if out.get("closed_by") == "server" and out.get("close_code") == 1006:
        return Observation(Outcome.STREAM_CUT, f"{delivery.get('unique')}/{expect} before the cut")
    if out.get("closed_by") == "server":
        return Observation(Outcome.CLOSED_UNEXPECTEDLY, f"close {out.get('close_code')} {out.get('close_reason')!r}")
    return Observation(Outcome.INCOMPLETE, f"{delivery.get('unique')}/{expect}, lost {delivery.get('lost_ranges')}")


def classify_handshake_status(ev: Evidence, status: int) -> Observation:
    """A handshake that must be answered ``status`` (TC's auth: 401/404 before any upgrade check)."""
    if _status(ev) == status and not ev.stream_requests():
        # The LB answered by itself (e.g. Traffic Server's "Not Found on Accelerator" 404 when no
        # ws:// remap rule matches): no router got this attempt's handshake, so it is not TC's answer.
        return Observation(Outcome.HANDSHAKE_REJECTED, f"status {status} from the LB: no router saw the handshake")
    if _status(ev) == status:
        challenge = [v for k, v in ev.outcome.get("handshake_headers") or [] if k.lower() == "www-authenticate"]
        if status == 401 and challenge != ["Basic"]:
            return Observation(Outcome.AUTH_CHALLENGE_WRONG, f"WWW-Authenticate {challenge}")
        return Observation(Outcome.PASS, f"status {status}")
    failed = classify_handshake(ev)
    return failed or Observation(Outcome.UNEXPECTED_STATUS, f"connected instead of {status}")


def classify_status(ev: Evidence, expected_status: int) -> Observation:
    """A plain HTTP request (recent logs, the echo app) that should answer ``expected_status``."""
    if _kind(ev) is not None and _kind(ev) != "handshake_status":
        failed = first_match(HANDSHAKE_RULES, ev)
        return Observation(failed or Outcome.HANDSHAKE_FAILED, str(ev.client.get("error")))
    status = ev.client.get("status")
    if status == expected_status:
        return Observation(Outcome.PASS, f"status {status}")
    if status == 400 and ev.proxy_header_rejected():
        return Observation(Outcome.PROXY_HEADER_REJECTED, "status 400")
    return Observation(Outcome.UNEXPECTED_STATUS, f"status {status}")


def classify_idle(ev: Evidence) -> Observation:
    """An idle stream the client holds open: still open at the end (it closed it), or cut by the LB,
    which the TC must have seen as a lost connection (no close frame) for this same attempt."""
    if failed := classify_handshake(ev):
        return failed
    out, tc = ev.outcome, ev.tc_closed_by()
    if out.get("closed_by") == "client":
        return Observation(Outcome.PASS, f"held open; TC saw close by {tc}")
    if out.get("closed_by") == "server" and out.get("close_code") == 1006 and tc == "lost":
        return Observation(Outcome.IDLE_CUT, "client 1006, TC lost the connection")
    return Observation(Outcome.CLOSED_UNEXPECTEDLY, f"client {out.get('closed_by')} {out.get('close_code')}, "
                                                    f"TC saw close by {tc}")


def _rst_not_applied(ev: Evidence) -> Observation | None:
    """The injector sent no RST, or one that raced a segment in flight: this end's ACK of it drew the
    LB kernel's RST, so what the client learned says nothing about the RST itself or a keepalive."""
    injected = ev.extra.get("injected")
    if not injected:
        return Observation(Outcome.IMPAIRMENT_NOT_APPLIED, "the injector sent no RST")
    if injected.get("raced") and injected.get("in_window", True):  # an out-of-window RST changes nothing
        return Observation(Outcome.IMPAIRMENT_NOT_APPLIED, "the RST raced data in flight: the client's ACK "
                                                           "drew the LB's RST")
    return None


def classify_rst(ev: Evidence) -> Observation:
    """A RST injected towards the LB mid-stream (``ev.extra['injected']``: what the injector sent)."""
    if failed := classify_handshake(ev):
        return failed
    if not_applied := _rst_not_applied(ev):
        return not_applied
    out, tc = ev.outcome, ev.tc_closed_by()
    if out.get("closed_by") == "server":
        return Observation(Outcome.STREAM_CUT, f"client saw close {out.get('close_code')}")
    if tc in ("lost", "tc"):
        return Observation(Outcome.HALF_OPEN, f"TC's end closed ({tc}) while the client stayed open")
    return Observation(Outcome.RST_IGNORED, f"TC's stream ended by the client's own close ({tc})")


def classify_redial(ev: Evidence, n: int) -> Observation:
    """A stream broken once on purpose that must come back: a break seen, the last envelope
    received after it, and the loss one contiguous gap with no duplicates."""
    if failed := classify_handshake(ev):
        return failed
    breaks, delivery = ev.outcome.get("breaks") or [], ev.client.get("delivery") or {}
    if not breaks:
        return Observation(Outcome.FAULT_NOT_SEEN, "no break recorded")
    before = int(breaks[0].get("received_so_far") or 0)
    if delivery.get("max_seq") != n - 1 or int(delivery.get("unique") or 0) <= before:
        return Observation(Outcome.NOT_RECOVERED, f"last seq {delivery.get('max_seq')} of {n - 1}; "
                                                  f"{delivery.get('unique')} unique, {before} before the break")
    if len(delivery.get("lost_ranges") or []) > 1 or delivery.get("duplicates"):
        return Observation(Outcome.LOSS_PATTERN, f"gaps {delivery.get('lost_ranges')}, "
                                                 f"duplicates {delivery.get('duplicates')}")
    return Observation(Outcome.PASS, f"gap {delivery.get('lost_ranges')}, {len(breaks)} re-dial(s)")


def classify_router_death(ev: Evidence, n: int, victim: str, killed_at: float) -> Observation:
    """Like ``classify_redial``, and the re-dialled stream is carried by another router (its 101 for
    this attempt came after the kill)."""
    seen = classify_redial(ev, n)
    if seen.outcome is not Outcome.PASS:
        return seen
    after = [r["router"] for r in ev.upgrades() if float(r["ts"]) > killed_at]
    if not after or victim in after:
        return Observation(Outcome.SAME_ROUTER, f"101s after the kill: {after}")
    return Observation(Outcome.PASS, f"{victim} -> {after[0]}; {seen.detail}")


def classify_firehose(evs: list[Evidence], n: int) -> Observation:
    """Two nozzles on one subscription split the firehose; a third on its own gets all of it."""
    for ev in evs:
        if failed := classify_handshake(ev):
            return failed
    a, b, c = (set(ev.client.get("seqs") or []) for ev in evs)
    everything = set(range(n))
    if a.isdisjoint(b) and a | b == everything and c == everything:
        return Observation(Outcome.PASS, f"shared {len(a)}+{len(b)}, solo {len(c)}")
    return Observation(Outcome.FIREHOSE_SPLIT_WRONG, f"|a|={len(a)} |b|={len(b)} |a&b|={len(a & b)} |c|={len(c)}")


def classify_xff(xff: str | None, client_ip: str, lb_ips: set[str],
                 proxy_ips: frozenset[str] = frozenset()) -> Observation:
    first = (xff or "").split(",")[0].strip()
    if first == client_ip:
        return Observation(Outcome.PASS, f"X-Forwarded-For {xff}")
    if first in lb_ips:
        return Observation(Outcome.LB_IP_AS_CLIENT, f"X-Forwarded-For {xff}")
    if first in proxy_ips:
        return Observation(Outcome.PROXY_IP_AS_CLIENT, f"X-Forwarded-For {xff}")
    return Observation(Outcome.XFF_WRONG, f"X-Forwarded-For {xff!r}, client {client_ip}")


def classify_xfp(seen: dict[str, str | None]) -> Observation:
    """``seen``: scheme the client used -> X-Forwarded-Proto the app got."""
    wrong = {scheme: value for scheme, value in seen.items() if value != scheme}
    if wrong:
        return Observation(Outcome.XFP_WRONG, ", ".join(f"{v!r} on {s}" for s, v in wrong.items()))
    return Observation(Outcome.PASS, ", ".join(seen))


def classify_silent_cut(ev: Evidence) -> Observation:
    """Packets silently dropped under an idle stream (``ev.extra['matched']``: packets the rule hit)."""
    if failed := classify_handshake(ev):
        return failed
    if not ev.extra.get("matched"):
        return Observation(Outcome.IMPAIRMENT_NOT_APPLIED, f"the drop rules matched {ev.extra.get('matched')} packets")
    if ev.outcome.get("closed_by") == "server":
        return Observation(Outcome.STREAM_CUT, f"client saw close {ev.outcome.get('close_code')}")
    if ev.tc_events("keepalive_timeout"):
        return Observation(Outcome.KEEPALIVE_1008, f"{ev.extra['matched']} packets dropped; TC closed 1008")
    return Observation(Outcome.STILL_OPEN, "nobody noticed the cut")


def classify_kernel_reset(ev: Evidence) -> Observation:
    """Every packet to the LB's port answered with a RST (``ev.extra['matched']``)."""
    if failed := classify_handshake(ev):
        return failed
    if not ev.extra.get("matched"):
        return Observation(Outcome.IMPAIRMENT_NOT_APPLIED, "the REJECT rule matched no packet")
    out = ev.outcome
    if out.get("closed_by") == "server" and out.get("close_code") == 1006:
        return Observation(Outcome.STREAM_CUT, f"{ev.extra['matched']} packets rejected")
    return Observation(Outcome.STILL_OPEN, f"client {out.get('closed_by')} {out.get('close_code')}")


def classify_impaired_stream(ev: Evidence, expect: int, applied: str | None) -> Observation:
    """A stream under an impairment that must not break it; ``applied`` is None when the impairment
    was shown to take effect, else why not (the check then judges nothing)."""
    if applied is not None:
        failed = classify_handshake(ev)
        return failed or Observation(Outcome.IMPAIRMENT_NOT_APPLIED, applied)
    return classify_stream(ev, expect)


# ---- on the wire ---------------------------------------------------------------------------------

OPCODE = {"binary": 2, "close": 8, "ping": 9, "pong": 10}


def classify_wire(at_router: wire.TcpStream | None, from_client: wire.TcpStream | None, *, mode: str,
                  proxy_v1: bool) -> tuple[Observation, dict[str, Any]]:
    """What the router received on one attempt's TCP stream, judged against what the client sent:
    TCP mode must pass the client's bytes (after a PROXY v1 line naming the client when on); HTTP
    mode must pass Upgrade/Connection and get a 101 with RFC 6455 framing on both hops."""
    if at_router is None or from_client is None:
        return Observation(Outcome.NOT_CAPTURED, f"router: {at_router is not None}, client: "
                                                 f"{from_client is not None}"), {}
    data = at_router.c2s
    facts: dict[str, Any] = {"first_bytes": data[:60].decode("latin-1")}
    if mode == "tcp":
        return _wire_tcp(data, from_client, proxy_v1, facts), facts
    start, headers, _ = wire.http_head(data)
    status_line, _, after_101 = wire.http_head(at_router.s2c)
    facts.update(request_line=start, upgrade=get(headers, "Upgrade"), xff=get(headers, "X-Forwarded-For"),
                 response=status_line)
    if not get(headers, "X-Forwarded-For"):
        return Observation(Outcome.XFF_WRONG, "no X-Forwarded-For from an HTTP-mode LB"), facts
    if not (has_token(headers, "Connection", "upgrade") and get(headers, "Upgrade")):
        if status_line.startswith("HTTP/1.1 400"):
            return Observation(Outcome.UPGRADE_STRIPPED, f"router got {start!r} without Upgrade, answered 400"), facts
        return Observation(Outcome.WIRE_UPGRADE_DROPPED, f"router answered {status_line!r}"), facts
    if not status_line.startswith("HTTP/1.1 101"):
        return Observation(Outcome.HANDSHAKE_REJECTED, status_line), facts
    return _wire_frames(wire.http_head(data)[2], after_101, from_client, facts), facts


def _wire_tcp(data: bytes, from_client: wire.TcpStream, proxy_v1: bool, facts: dict[str, Any]) -> Observation:
    expected = from_client.c2s
    if proxy_v1:
        header, _, data = data.partition(b"\r\n")
        facts["proxy_header"] = header.decode("latin-1")
        if not header.startswith(f"PROXY TCP4 {from_client.client[0]} ".encode()):
            return Observation(Outcome.WIRE_PROXY_HEADER_WRONG, repr(header[:80]))
    n = min(len(data), len(expected))
    facts["bytes_compared"] = n
    if n < 100 or data[:n] != expected[:n]:
        return Observation(Outcome.WIRE_BYTES_CHANGED, f"{n} bytes compared")
    return Observation(Outcome.PASS, f"{n} bytes identical")


def _wire_frames(up_bytes: bytes, down_bytes: bytes, from_client: wire.TcpStream, facts: dict[str, Any]) -> Observation:
    down, up = wire.ws_frames(down_bytes), wire.ws_frames(up_bytes)
    facts.update(down=sorted({f.opcode for f in down}), up=sorted({f.opcode for f in up}))
    if OPCODE["binary"] not in facts["down"] or any(f.masked for f in down):
        return Observation(Outcome.WIRE_FRAMING_WRONG, "router->LB: server frames must be unmasked binary")
    if up and not all(f.masked for f in up):
        return Observation(Outcome.WIRE_FRAMING_WRONG, "LB->router: client frames must be masked")
    client_down = wire.ws_frames(wire.http_head(from_client.s2c)[2])
    client_up = wire.ws_frames(wire.http_head(from_client.c2s)[2])
    facts.update(client_hop_down=sorted({f.opcode for f in client_down}),
                 client_hop_up_masked=all(f.masked for f in client_up))
    if OPCODE["binary"] not in facts["client_hop_down"] or any(f.masked for f in client_down) or \
            not facts["client_hop_up_masked"]:
        return Observation(Outcome.WIRE_FRAMING_WRONG, "client<->LB hop: server frames must be unmasked, "
                                                       "client frames masked")
    return Observation(Outcome.PASS, f"{len(down)} frames down, {len(up)} up")


# ---- kernel impairments (appended by the kernel-faults work) --------------------------------------


def classify_shaped_stream(ev: Evidence, applied: str | None) -> Observation:
    """A stream fed faster than a bandwidth cap lets through: it must stay up until the client ends
    it. Envelopes Loggregator's drop-oldest buffers shed are counted in the detail, not failed (the
    platform's designed behaviour). ``applied`` as in ``classify_impaired_stream``."""
    if failed := classify_handshake(ev):
        return failed
    if applied is not None:
        return Observation(Outcome.IMPAIRMENT_NOT_APPLIED, applied)
    out, delivery = ev.outcome, ev.client.get("delivery") or {}
    if out.get("closed_by") == "server":
        cut = Outcome.STREAM_CUT if out.get("close_code") == 1006 else Outcome.CLOSED_UNEXPECTEDLY
        return Observation(cut, f"close {out.get('close_code')} after {delivery.get('unique')} envelopes")
    if not delivery.get("unique"):
        return Observation(Outcome.INCOMPLETE, "no envelope arrived")
    return Observation(Outcome.PASS, f"{delivery.get('unique')} delivered, {delivery.get('lost')} shed")


# ---- the LB's own idle cut, measured at real timing (customer configs, drivers that do not honour
# lb.idle_timeout) -----------------------------------------------------------------------------------

from harness.customer.model import ELB_DEFAULT_IDLE_S, KEEPALIVE_MARGIN_S, TC_KEEPALIVE_S  # noqa: E402

#: A cut within this many seconds of idle kills streams between the Traffic Controller's pings.
KEEPALIVE_GUARD_S = TC_KEEPALIVE_S + KEEPALIVE_MARGIN_S


def expected_idle_measured(ws: Expectation, driver: Driver) -> Expectation:
    """What the measured idle cut must show: the stream's own failure first, else the driver's
    declared default (None: no cut), judged against the Traffic Controller's keepalive."""
    if ws.outcome != PASS:
        return ws
    if driver.customer_topology:  # the customer wants it to work: a short cut shows as a mismatch
        return Expectation(PASS, "a capable LB does not cut idle streams sooner than the Traffic Controller's "
                                 "~15 s pings")
    default = driver.default_idle_timeout
    if default is not None and default <= KEEPALIVE_GUARD_S:
        return Expectation(Outcome.IDLE_CUT, f"driver '{driver.name}' cuts idle streams after {default:g} s, "
                                             f"before the Traffic Controller's next ping (~15 s)")
    return Expectation(PASS, f"driver '{driver.name}' declares " + ("no idle cut" if default is None else
                                                                    f"a {default:g} s idle cut") + " (> 15 s pings)")


def classify_idle_measured(ev: Evidence, bound: float) -> Observation:
    """An idle stream the Traffic Controller does not ping, held for at most ``bound`` s: the LB's
    idle cut is when the TC lost this attempt's connection (no close frame), measured from the
    stream's open on the TC; judged against the TC's real keepalive (~15 s + round trip)."""
    if failed := classify_handshake(ev):
        return failed
    out, tc = ev.outcome, ev.tc_closed_by()
    opened = [float(e["ts"]) for e in ev.tc_events("stream_open")]
    closed = [float(e["ts"]) for e in ev.tc_events("stream_closed")]
    if out.get("closed_by") == "client":
        return Observation(PASS, f"no idle cut within {bound:g} s (longer than ELB's {ELB_DEFAULT_IDLE_S:g} s "
                                 f"default): idle streams outlive the Traffic Controller's ~15 s ping interval")
    if not (out.get("closed_by") == "server" and tc == "lost" and opened and closed):
        return Observation(Outcome.CLOSED_UNEXPECTEDLY, f"client {out.get('closed_by')} {out.get('close_code')}, "
                                                        f"TC saw close by {tc}")
    cut = closed[0] - opened[0]
    if cut <= KEEPALIVE_GUARD_S:
        return Observation(Outcome.IDLE_CUT, f"your LB cuts idle WebSocket streams after {cut:.1f} s; the Traffic "
                                             f"Controller pings every 15 s: streams die between log bursts")
    note = "the ELB-like 60 s default" if abs(cut - ELB_DEFAULT_IDLE_S) < 3 else f"{cut:.1f} s"
    return Observation(PASS, f"LB cuts idle streams after {cut:.1f} s ({note}): the Traffic Controller's ~15 s "
                             f"pings keep streams alive")


def expected_for_customer(topo: Topology, expectations: dict[str, Expectation]) -> dict[str, Expectation]:
    """A customer's cell: a check whose listener the config lacks is not applicable (naming the
    port), never an error; the artificial lb_idle variants do not apply (the cut is measured)."""
    out = dict(expectations)
    needs = {"xff": ("echo", 80), "xfp": ("echo", 80), "on_wire": ("doppler", 80)}
    for check, (label, port) in needs.items():
        if _listener(topo.lb(topo.dns[label]), port) is None:
            out[check] = Expectation(Outcome.NOT_APPLICABLE, f"your config has no listener on {port}")
    out["idle"] = Expectation(Outcome.NOT_APPLICABLE, "the harness cannot set a customer config's idle timeout: "
                                                      "see idle_measured")
    return out


def classify_rst_keepalive(ev: Evidence) -> Observation:
    """A RST injected toward the LB under noaa's Stream (``--retries``, Go's TCP keepalive): the
    client must learn of the dead stream itself (a break ending in 1006, the kernel's reset), re-dial
    and get envelopes again; a client that never learns is ``half_open``."""
    if failed := classify_handshake(ev):
        return failed
    if not_applied := _rst_not_applied(ev):
        return not_applied
    breaks, delivery = ev.outcome.get("breaks") or [], ev.client.get("delivery") or {}
    if not breaks:
        tc = ev.tc_closed_by()
        if tc in ("lost", "tc"):
            return Observation(Outcome.HALF_OPEN, f"TC's end closed ({tc}); the client never learned")
        return Observation(Outcome.RST_IGNORED, f"no break; TC saw close by {tc}")
    first = breaks[0]
    before = int(first.get("received_so_far") or 0)
    if int(delivery.get("unique") or 0) <= before:
        return Observation(Outcome.NOT_RECOVERED, f"break at {first.get('at_s')} s, nothing after it")
    return Observation(Outcome.PASS, f"learned at {first.get('at_s')} s ({first.get('transport_error')}, "
                                     f"close {first.get('close_code')}); lost {delivery.get('lost_ranges')}")

# ---- today's log paths: one check per client kind (harness.profiles) -------------------------------


def expected_log_readers(topo: Topology, driver_of: dict[str, Driver]) -> dict[str, Expectation]:
    """Checks of the current foundation profile. Log Cache and the RLP gateway are plain HTTPS on 443
    through the LB (no Upgrade needed), so an LB that strips Upgrade still carries them; the
    Traffic Controller of a current foundation answers 404 to recent logs."""
    # Clients find Log Cache and the RLP gateway in Cloud Controller's root document first.
    api = _through(topo, driver_of, "api", 80, websocket=False)
    log_cache = api if api.outcome != PASS else _through(topo, driver_of, "log-cache", 443, websocket=False)
    log_stream = api if api.outcome != PASS else _through(topo, driver_of, "log-stream", 443, websocket=False)
    plain_doppler = _through(topo, driver_of, "doppler", topo.logger_port, websocket=False)
    https = " (HTTPS on 443, no Upgrade)"
    return {
        "cf_logs_log_cache": Expectation(log_cache.outcome, "cf CLI >= 6.50 polls Log Cache: " + log_cache.because + https),
        "cf_recent_log_cache": Expectation(log_cache.outcome, "cf CLI >= 6.50 reads recent logs from Log Cache: "
                                           + log_cache.because + https),
        "v2_nozzle": (log_stream.outcome == PASS and _buffered(topo, driver_of)) or Expectation(log_stream.outcome, "RLP gateway server-sent events: "
                                                               + log_stream.because + https),
        "recent_logs_current": plain_doppler if plain_doppler.outcome != PASS else Expectation(
            Outcome.RECENT_LOGS_GONE, "Loggregator >= 107: the Traffic Controller no longer serves recent logs"),
        # cloudfoundry-client (PyPI): noaa's WebSocket path for streams, TC's multipart for recent logs;
        # its RLP reader sends the token with no scheme, which Cloud Controller refuses for a user.
        "third_party_logs": _through(topo, driver_of, "doppler", topo.logger_port, websocket=True),
        "third_party_recent_logs": plain_doppler,
        "third_party_rlp": log_stream if log_stream.outcome != PASS else Expectation(
            Outcome.LOG_READ_DENIED, "cloudfoundry-client sends 'Authorization: <jwt>' without 'bearer' to the RLP "
            "gateway; Cloud Controller's log access wants a token starting with 'bearer' (UaaTokenDecoder)"),
    }


def _buffered(topo: Topology, driver_of: dict[str, Driver]) -> Expectation | None:
    """An HTTP-mode listener of a driver that buffers proxied responses holds server-sent events."""
    lb = topo.lb(topo.dns["log-stream"])
    listener, driver = _listener(lb, 443), driver_of[lb.name]
    if listener and listener.protocol == "http" and driver.vars.get("buffers_responses"):
        return Expectation(Outcome.RESPONSE_BUFFERED, f"driver '{driver.name}' buffers proxied responses "
                                                      "(buffers_responses) in HTTP mode")
    return None


def _http_failure(ev: Evidence) -> Observation | None:
    """Why a plain HTTPS read never got its answer, or None when it did (status 200)."""
    kind = _kind(ev)
    if kind == "tls_failed":
        return Observation(Outcome.TLS_FAILED, str(ev.client.get("error")))
    if kind not in (None, "http_status"):
        return Observation(first_match(HANDSHAKE_RULES, ev) or Outcome.HANDSHAKE_FAILED, str(ev.client.get("error")))
    status = ev.client.get("status")
    if status == 200:
        return None
    if status == 400 and ev.proxy_header_rejected():
        return Observation(Outcome.PROXY_HEADER_REJECTED, "status 400")
    if status == 404 and _reader_said_404(ev):
        return Observation(Outcome.LOG_READ_DENIED, f"status 404 ({ev.client.get('error')})")
    return Observation(Outcome.UNEXPECTED_STATUS, f"status {status} ({ev.client.get('error')})")


def _reader_said_404(ev: Evidence) -> bool:
    """A router forwarded this attempt's read to Log Cache / the RLP gateway and relayed its 404
    (not gorouter's own unknown_route 404, which is never forwarded)."""
    return any(r.get("status") == 404 and "forwarded_headers" in r
               and str(r.get("path") or "").startswith(("/api/v1/read/", "/v2/read")) for r in ev.routers)


def classify_log_reader(ev: Evidence, expect: int) -> Observation:
    """``cf logs`` through Log Cache, or a v2 nozzle on the RLP gateway, that should deliver
    ``expect`` lines: the same accounting as a WebSocket stream (lost, order, latency)."""
    sent = int((ev.extra.get("gateway_sent") or {}).get("envelopes") or 0)
    delivery = ev.client.get("delivery") or {}
    if sent >= expect > int(delivery.get("unique") or 0) and _kind(ev) in (None, "response_timeout"):
        return Observation(Outcome.RESPONSE_BUFFERED, f"the gateway wrote {sent} envelopes for this attempt, the "
                                                      f"nozzle got {delivery.get('unique')}")
    if failed := _http_failure(ev):
        return failed
    if delivery.get("unique") == expect and delivery.get("lost") == 0:
        if delivery.get("out_of_order"):
            return Observation(Outcome.OUT_OF_ORDER, f"{delivery['out_of_order']} out of order")
        return Observation(PASS, f"{expect}/{expect}, p50 {delivery.get('latency_ms_p50')} ms")
    if ev.outcome.get("closed_by") == "server":
        return Observation(Outcome.STREAM_CUT, f"{delivery.get('unique')}/{expect} before the server ended it")
    return Observation(Outcome.INCOMPLETE, f"{delivery.get('unique')}/{expect}, lost {delivery.get('lost_ranges')}")


def classify_recent_current(ev: Evidence) -> Observation:
    """Recent logs from the Traffic Controller of a current foundation: 404, and the TC itself
    recorded this attempt's request as a removed endpoint (not a router's unknown_route 404)."""
    if _kind(ev) is not None and _kind(ev) != "handshake_status":
        return Observation(first_match(HANDSHAKE_RULES, ev) or Outcome.HANDSHAKE_FAILED, str(ev.client.get("error")))
    status = ev.client.get("status")
    if status == 404 and ev.tc_events("recent_logs_removed"):
        return Observation(Outcome.RECENT_LOGS_GONE, "status 404 from the Traffic Controller")
    if status == 400 and ev.proxy_header_rejected():
        return Observation(Outcome.PROXY_HEADER_REJECTED, "status 400")
    if status == 200:
        return Observation(PASS, "the Traffic Controller still served recent logs")
    return Observation(Outcome.UNEXPECTED_STATUS, f"status {status}")
