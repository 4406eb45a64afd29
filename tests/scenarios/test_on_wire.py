"""On-wire proof with Scapy: what the routers actually received from the LB, per LB mode.

Probes capture in the client's and the routers' network namespaces; the stream goes over plain
ws on port 80 so the bytes are readable. The TCP streams judged are the ones that carry this
attempt's id, read once the probes hold their end (``Witness.streams``): never another test's.
"""

from __future__ import annotations

import time
from typing import Callable

import pytest

from harness.deployment import APP_GUID, ClientRun, Deployment
from harness.protocol import wire
from harness.verdicts import classify_wire

pytestmark = [pytest.mark.topology(name) for name in
              ("http-upgrade", "http-only-elb", "tcp-same-port", "tcp-same-port-proxy")]


def exchange(dep: Deployment) -> ClientRun:
    """One stream of 50 envelopes over ws://...:80."""
    run = dep.client_run("logs", "--endpoint", f"ws://{dep.topology.fqdn('doppler')}:80", "--app", APP_GUID,
                         "--token", "bearer dev", "--expect", "50", "--timeout", "20")
    if run.wait_event("connected", 15):
        dep.emit(50)
    run.result(40)
    return run


def captured(dep: Deployment, run: ClientRun) -> tuple[wire.TcpStream | None, wire.TcpStream | None]:
    """This attempt's stream at the router whose records say it carried it, and at the client."""
    carriers = sorted({str(r["router"]) for r in dep.witness.router_records(run.attempt, run.started, time.time())})
    at_router = next((s for name in carriers for s in dep.witness.streams(name, run) if s.server[1] == 80), None)
    from_client = next((s for s in dep.witness.streams("client", run) if s.server[1] == 80), None)
    return at_router, from_client


@pytest.mark.check("on_wire")
def test_what_the_router_received_matches_the_lb_mode(deployment: Deployment, verdict: Callable[..., None]) -> None:
    run = exchange(deployment)
    lb = deployment.topology.lb(deployment.topology.dns["doppler"])
    mode = next(lst.protocol for lst in lb.listeners if lst.port == 80)
    seen, facts = classify_wire(*captured(deployment, run), mode=mode, proxy_v1=lb.proxy_protocol == "v1")
    verdict("on_wire", seen, attempt=run.attempt, **facts)
