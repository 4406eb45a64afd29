"""Where an attempt broke, hop by hop, from recorded evidence (no Docker)."""

from __future__ import annotations

from typing import Any

from harness import diagrams, hops, plugin, topology
from harness.witness import Evidence

ENDPOINT = "wss://doppler.sys.example.com:443"


def stream(routers: tuple[dict[str, Any], ...] = (), tc: tuple[dict[str, Any], ...] = (), **outcome: Any) -> Evidence:
    client = {"endpoint": ENDPOINT, "outcome": {"url": ENDPOINT, **outcome},
              "delivery": {"expected": 1000, "unique": 1000, "lost": 0}}
    return Evidence("a1", 0.0, 1.0, client, routers, tc)


ROUTED = {"router": "router-1", "ts": 0.5, "path": "/apps/x/stream", "status": 101, "upgrade": True,
          "headers": [["Upgrade", "websocket"], ["X-Forwarded-For", "10.0.0.2"]], "peer": "10.0.1.5"}
OPEN = ({"event": "stream_open", "ts": 0.6}, {"event": "stream_closed", "ts": 0.9, "closed_by": "client",
                                               "close_code": 1000})


def oks(trace: list[dict[str, Any]]) -> list[bool | None]:
    return [h["ok"] for h in trace]


def test_a_healthy_stream_is_green_on_every_hop() -> None:
    trace = hops.trace(stream((ROUTED,), OPEN, closed_by="client", close_code=1000))
    assert oks(trace) == [True, True, True, True] and hops.broken_at(trace) is None
    assert trace[1]["node"] == "router-1" and "X-Forwarded-For: 10.0.0.2" in trace[1]["facts"]
    assert "1000/1000 envelopes" in trace[3]["facts"] and "TC: closed by client (1000)" in trace[3]["facts"]


def test_a_stripped_upgrade_breaks_between_lb_and_router() -> None:
    plain = {**ROUTED, "status": 400, "upgrade": False, "headers": [["X-Forwarded-For", "10.0.0.2"]]}
    rejected = ({"event": "handshake_rejected", "ts": 0.6, "status": 400, "reason": "missing Upgrade"},)
    trace = hops.trace(stream((plain,), rejected, error_kind="handshake_status", handshake_status=400))
    assert oks(trace) == [True, False, None, None] and hops.broken_at(trace) == "LB → router"
    assert "Upgrade missing: a plain GET" in trace[1]["facts"]


def test_a_proxy_v2_header_breaks_between_lb_and_router() -> None:
    bad = {"router": "router-0", "ts": 0.5, "status": 400, "path": None, "upgrade": None, "bad_request": "x",
           "proxy_v2_signature": True, "proxy_v1_line": False}
    trace = hops.trace(stream((bad,), (), error_kind="handshake_status", handshake_status=400))
    assert hops.broken_at(trace) == "LB → router" and "PROXY v2 signature" in " ".join(trace[1]["facts"])


def test_a_refused_dial_breaks_before_the_lb() -> None:
    trace = hops.trace(stream((), (), error_kind="connect_refused", error="[Errno 111] Connection refused"))
    assert oks(trace) == [False, None, None, None] and "connect_refused" in trace[0]["facts"][1]


def test_a_stream_the_tc_lost_breaks_at_its_end() -> None:
    lost = ({"event": "stream_open", "ts": 0.6}, {"event": "keepalive_timeout", "ts": 0.8},
            {"event": "stream_closed", "ts": 0.9, "closed_by": "tc", "close_code": 1008})
    trace = hops.trace(stream((ROUTED,), lost, closed_by="server", close_code=1006))
    assert oks(trace) == [True, True, True, False] and "TC keepalive timeout (1008)" in trace[3]["facts"]


def test_a_plain_http_request_has_three_hops() -> None:
    ev = Evidence("a2", 0.0, 1.0, {"url": "http://echo.apps.example.com/", "status": 200},
                  ({**ROUTED, "path": "/", "status": 200, "upgrade": False},))
    assert oks(hops.trace(ev)) == [True, True, True]


def test_junit_properties_carry_expected_observed_diagnosis_and_the_broken_hop() -> None:
    hops_seen = [{"hop": "client → LB", "ok": True, "facts": []}, {"hop": "LB → router", "ok": False, "facts": []}]
    record = {"check": "logs", "expected": "upgrade_stripped", "observed": "upgrade_stripped",
              "diagnosis": "LB dropped the Upgrade header", "hops": hops_seen}
    assert plugin.junit_properties(record) == [("logs.expected", "upgrade_stripped"),
                                               ("logs.observed", "upgrade_stripped"),
                                               ("logs.diagnosis", "LB dropped the Upgrade header"),
                                               ("logs.broken_at", "LB → router")]


def test_the_diagram_colours_the_traced_path() -> None:
    topo = topology.load_all()["http-only-elb"].with_driver("elb")
    trace = hops.trace(stream(({**ROUTED, "upgrade": False, "status": 400},), (), error_kind="handshake_status",
                              handshake_status=400))
    source = diagrams.graph(topo, trace).source
    edge = f'lb_lb -> "router-1" [label="X-Forwarded-For: 10.0.0.2\nUpgrade missing: a plain GET" '
    assert edge + f'color="{diagrams.BROKEN}"' in source
    assert f'to {ENDPOINT}\nattempt a1" color="{diagrams.OK}" penwidth=2.5' in source
    svg = diagrams.svg(diagrams.graph(topo, trace))
    assert svg is not None and svg.startswith("<svg") and diagrams.BROKEN in svg
    untraced = diagrams.graph(topo, None).source
    assert diagrams.BROKEN not in untraced and diagrams.OK not in untraced


def test_a_crafted_client_that_only_hangs_up_is_not_judged_at_the_stream_end() -> None:
    crafted = {"status": 101, "status_line": "HTTP/1.1 101 Switching Protocols", "writes": 90, "delivery": {},
               "outcome": {"url": ENDPOINT, "connected": True, "closed_by": None}}  # harness.cf.client crafted
    ev = Evidence("a3", 0.0, 1.0, crafted,
                  (ROUTED,), ({"event": "stream_open", "ts": 0.6},
                              {"event": "stream_closed", "ts": 0.9, "closed_by": "lost", "close_code": 1006}))
    trace = hops.trace(ev)
    assert trace[3]["ok"] is None and hops.broken_at(trace) is None


def test_a_half_open_stream_is_broken_at_its_end() -> None:
    lost = ({"event": "stream_open", "ts": 0.6}, {"event": "stream_closed", "ts": 0.9, "closed_by": "lost",
                                                  "close_code": 1006})
    trace = hops.trace(stream((ROUTED,), lost, closed_by="client", close_code=1000))
    assert hops.broken_at(trace) == "stream end"
