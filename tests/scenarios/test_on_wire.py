"""On-wire proof with Scapy: what the routers actually received from the LB, per LB mode.

Probes capture in the client's and the routers' network namespaces; the stream goes over plain
ws on port 80 so the bytes are readable.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest

from harness.deployment import APP_GUID, Deployment
from harness.protocol import wire
from harness.protocol.headers import get, has_token
from harness.verdicts import PASS

pytestmark = [pytest.mark.topology(name) for name in
              ("http-upgrade", "http-only-elb", "tcp-same-port", "tcp-same-port-proxy")]
PATH = f"/apps/{APP_GUID}/stream".encode()
OPCODE = {"binary": 2, "close": 8, "ping": 9, "pong": 10}


def _exchange(dep: Deployment) -> float:
    """One stream of 50 envelopes over ws://...:80, long enough to see a ping/pong."""
    since = time.time()
    run = dep.client_run("logs", "--endpoint", f"ws://{dep.topology.fqdn('doppler')}:80", "--app", APP_GUID,
                         "--token", "bearer dev", "--expect", "50", "--timeout", "20")
    if run.wait_event("connected", 15):
        dep.emit(50)
    run.result(40)
    return since


def _stream_to_router(dep: Deployment, since: float) -> wire.TcpStream | None:
    for i in range(dep.topology.router_count):
        for stream in wire.streams(dep.probe(f"router-{i}").packets(since)):
            if stream.server[1] == 80 and PATH in stream.c2s[:300]:
                return stream
    return None


def _stream_from_client(dep: Deployment, since: float) -> wire.TcpStream | None:
    for stream in wire.streams(dep.probe("client").packets(since)):
        if stream.server[1] == 80 and PATH in stream.c2s[:300]:
            return stream
    return None


def _judge(dep: Deployment, at_router: wire.TcpStream, from_client: wire.TcpStream) -> tuple[str, dict[str, Any]]:
    lb = dep.topology.lb(dep.topology.dns["doppler"])
    listener = next(lst for lst in lb.listeners if lst.port == 80)
    data = at_router.c2s
    facts: dict[str, Any] = {"first_bytes": data[:60].decode("latin-1")}
    if listener.protocol == "tcp":
        expected = from_client.c2s
        if lb.proxy_protocol == "v1":
            header, _, data = data.partition(b"\r\n")
            facts["proxy_header"] = header.decode()
            if not header.startswith(f"PROXY TCP4 {from_client.client[0]} ".encode()):
                return f"PROXY header does not name the client: {header!r}", facts
        n = min(len(data), len(expected))
        facts["bytes_compared"] = n
        if n < 100 or data[:n] != expected[:n]:
            return "TCP mode changed the client's bytes", facts
        return PASS, facts
    start, headers, _ = wire.http_head(data)
    facts.update(request_line=start, upgrade=get(headers, "Upgrade"), xff=get(headers, "X-Forwarded-For"))
    status_line, _, after_101 = wire.http_head(at_router.s2c)
    facts["response"] = status_line
    if dep.drivers[lb.driver].passes_upgrade:
        if not (has_token(headers, "Connection", "upgrade") and get(headers, "Upgrade")):
            return "LB in HTTP mode dropped Upgrade/Connection", facts
        if not status_line.startswith("HTTP/1.1 101"):
            return f"no 101 from the router: {status_line}", facts
        down = wire.ws_frames(after_101)
        up = wire.ws_frames(wire.http_head(data)[2])
        facts.update(down=sorted({f.opcode for f in down}), up=sorted({f.opcode for f in up}))
        if OPCODE["binary"] not in facts["down"] or any(f.masked for f in down):
            return "server frames must be unmasked binary", facts
        if up and not all(f.masked for f in up):
            return "client frames must be masked", facts
        # The client<->LB hop carries the same framing: the LB re-frames nothing.
        client_down = wire.ws_frames(wire.http_head(from_client.s2c)[2])
        client_up = wire.ws_frames(wire.http_head(from_client.c2s)[2])
        facts.update(client_hop_down=sorted({f.opcode for f in client_down}),
                     client_hop_up_masked=all(f.masked for f in client_up))
        if OPCODE["binary"] not in facts["client_hop_down"] or any(f.masked for f in client_down) or \
                not facts["client_hop_up_masked"]:
            return "client<->LB hop: server frames must be unmasked, client frames masked", facts
    elif get(headers, "Upgrade") is not None or not status_line.startswith("HTTP/1.1 400"):
        return "an HTTP-only LB should have dropped Upgrade and got a 400", facts
    if not get(headers, "X-Forwarded-For"):
        return "no X-Forwarded-For from an HTTP-mode LB", facts
    return PASS, facts


def test_what_the_router_received_matches_the_lb_mode(deployment: Deployment, verdict: Callable[..., None]) -> None:
    since = _exchange(deployment)
    time.sleep(0.5)  # the probes flush per packet; give the last ones a moment
    at_router, from_client = _stream_to_router(deployment, since), _stream_from_client(deployment, since)
    if at_router is None or from_client is None:
        return verdict("on_wire", f"stream not captured (router: {at_router is not None}, "
                                  f"client: {from_client is not None})")
    observed, facts = _judge(deployment, at_router, from_client)
    verdict("on_wire", observed, **facts)
