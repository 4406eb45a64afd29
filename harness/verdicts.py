"""What should happen in a matrix cell (from the seed's rules) and what did happen (from evidence).

Both sides speak the same small vocabulary of outcomes, so a check passes when the observed outcome
equals the expected one, and an expected failure is asserted as the specific failure it must be.
Pure functions: unit-tested without Docker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.drivers import Driver
from harness.topology import Listener, LoadBalancer, Topology

# Outcomes and the one-line diagnosis the report prints for each.
PASS = "pass"
DIAGNOSES = {
    PASS: "works",
    "upgrade_stripped": "LB dropped the Upgrade header: the router received a plain GET and the Traffic "
                        "Controller answered 400 (websocket: bad handshake)",
    "dial_refused": "client dialled the advertised logger port, where the LB does not listen (connection refused)",
    "proxy_header_rejected": "LB sent a PROXY header the routers cannot read (gorouter reads only v1, and only "
                             "with enable_proxy): it reached the HTTP parser and the router answered 400 Bad Request",
    "proxy_ip_as_client": "a fault proxy (a TCP hop) sits between client and LB: the LB sees the proxy's "
                          "address, so X-Forwarded-For starts with it",
    "lb_ip_as_client": "TCP mode without PROXY protocol: the router saw the LB's address, so the app's "
                       "X-Forwarded-For names the LB, not the client",
    "idle_cut": "LB closed the stream after its idle timeout: keepalive pings were further apart than it",
    "stream_cut": "the stream was cut mid-way (peer closed without a close frame) and the client saw it within "
                  "its bound",
    "handshake_timeout": "the handshake got no answer; the client gave up at its open timeout instead of hanging",
    "half_open": "the LB accepted the injected RST and the Traffic Controller closed the stream, but nothing "
                 "reached the client: it sits on a dead stream until it next writes (noaa sets no read deadline)",
    "keepalive_1008": "packets silently dropped: the client saw nothing, and only the Traffic Controller's "
                      "keepalive noticed (no pong, close 1008)",
}


def diagnosis(outcome: str) -> str:
    return DIAGNOSES.get(outcome, outcome)


@dataclass(frozen=True)
class Expectation:
    outcome: str
    because: str  # the seed rule or fact that predicts it


def _listener(lb: LoadBalancer, port: int) -> Listener | None:
    return next((lst for lst in lb.listeners if lst.port == port), None)


def _through(topo: Topology, driver_of: dict[str, Driver], label: str, port: int, *, websocket: bool) -> Expectation:
    """Predict a request to ``<label>`` on ``port`` through the LB the topology's DNS names."""
    lb = topo.lb(topo.dns[label])
    listener = _listener(lb, port)
    if listener is None:
        return Expectation("dial_refused", f"LB '{lb.name}' has no listener on {port}")
    if listener.protocol == "http":
        driver = driver_of[lb.name]
        if websocket and not driver.passes_upgrade:
            return Expectation("upgrade_stripped", f"driver '{driver.name}' cannot pass Upgrade in HTTP mode")
        return Expectation(PASS, "HTTP mode" + (" with Upgrade passed" if websocket else ""))
    if lb.proxy_protocol == "v2" or (lb.proxy_protocol == "v1" and not topo.router_proxy_protocol):
        return Expectation("proxy_header_rejected", f"gorouter cannot read this PROXY {lb.proxy_protocol} header")
    return Expectation(PASS, "TCP mode passes the client's bytes")


def expected(topo: Topology, drivers: dict[str, Driver], keepalive_interval: float = 15.0) -> dict[str, Expectation]:
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
    out["on_wire"] = Expectation(PASS, "what the routers receive matches the LB mode")
    out["crafted_split_handshake"] = ws
    out["crafted_header_casing"] = ws
    out["crafted_rst"] = ws if ws.outcome != PASS else Expectation(
        "half_open", "a RST to the LB ends the LB's and TC's side; nothing tells the client")
    out["kernel_reset"] = ws if ws.outcome != PASS else Expectation("stream_cut", "the LB's kernel answers with RST")
    out["fault_limit_data"] = ws if ws.outcome != PASS else Expectation("stream_cut", "limit_data closes the link")
    out["fault_timeout"] = ws if ws.outcome != PASS else Expectation("handshake_timeout", "timeout toxic holds data")
    out["kernel_blackhole"] = out["kernel_partition"] = ws if ws.outcome != PASS else Expectation(
        "keepalive_1008", "silent drop: only the Traffic Controller's keepalive notices")
    ws_lb = topo.lb(topo.dns["doppler"])
    if ws.outcome != PASS:
        out["idle"] = ws
    elif keepalive_interval < ws_lb.idle_timeout:
        out["idle"] = Expectation(PASS, f"pings every {keepalive_interval:g} s < LB idle timeout {ws_lb.idle_timeout:g} s")
    else:
        out["idle"] = Expectation("idle_cut", f"pings every {keepalive_interval:g} s >= LB idle timeout "
                                              f"{ws_lb.idle_timeout:g} s")
    lb = topo.lb(topo.dns["echo"])
    listener = _listener(lb, 80)
    if app.outcome == PASS and listener and listener.protocol == "tcp" and lb.proxy_protocol == "none":
        out["xff"] = Expectation("lb_ip_as_client", "TCP mode without PROXY protocol hides the client address")
    if app.outcome == PASS and "client-lb" in topo.faults:
        out["xff"] = Expectation("proxy_ip_as_client", "the client<->LB fault proxy is a TCP hop")
    return out


# ---- observed outcomes, classified from the client's result and the routers' witness ---------------


def classify_stream(outcome: dict[str, Any], delivery: dict[str, Any] | None, expect: int,
                    router_saw_upgrade: bool | None) -> str:
    """Outcome of a stream attempt; ``router_saw_upgrade`` is None when no router saw the request."""
    error = outcome.get("error") or ""
    if error.startswith("dial:") and "ConnectionRefused" in error:
        return "dial_refused"
    if "TimeoutError" in error or "timed out during opening handshake" in error:
        return "handshake_timeout"
    status = outcome.get("handshake_status")
    if status is not None:
        if status == 400 and router_saw_upgrade is False:
            return "upgrade_stripped"
        if status == 400 and outcome.get("handshake_body", "").startswith("400 Bad Request"):
            return "proxy_header_rejected"
        return f"handshake_{status}"
    if error:
        return f"error: {error}"
    if delivery is None or expect == 0:
        return PASS if outcome.get("connected") else "not_connected"
    if delivery["unique"] == expect and delivery["lost"] == 0:
        return PASS
    if outcome.get("closed_by") == "server" and outcome.get("close_code") == 1006:
        return "stream_cut"
    return f"incomplete: {delivery['unique']}/{expect}"


def classify_idle(outcome: dict[str, Any]) -> str:
    """An idle stream held open by the client: still open at the end, or cut by someone."""
    if outcome.get("closed_by") == "client":
        return PASS
    if outcome.get("closed_by") == "server" and outcome.get("close_code") == 1006:
        return "idle_cut"
    return classify_stream(outcome, None, 0, None) if not outcome.get("connected") else \
        f"closed {outcome.get('close_code')} {outcome.get('close_reason')!r}"


def classify_status(status: int | None, expected_status: int, body: str = "", error: str | None = None) -> str:
    """Outcome of a plain request that should answer ``expected_status``."""
    if error and "ConnectionRefused" in error:
        return "dial_refused"
    if status == expected_status:
        return PASS
    if status == 400 and body.startswith("400 Bad Request"):
        return "proxy_header_rejected"
    return f"status_{status}"


def classify_xff(xff: str | None, client_ip: str, lb_ips: set[str], proxy_ips: frozenset[str] = frozenset()) -> str:
    first = (xff or "").split(",")[0].strip()
    if first == client_ip:
        return PASS
    if first in lb_ips:
        return "lb_ip_as_client"
    if first in proxy_ips:
        return "proxy_ip_as_client"
    return f"xff={xff!r}"
