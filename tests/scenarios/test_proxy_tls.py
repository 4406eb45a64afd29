"""PROXY v1 in front of TLS on 443 (an AWS TCP:443 listener with the proxy protocol policy).

gorouter with ``enable_proxy`` reads the PROXY line before the TLS handshake on its TLS listener
(cloudfoundry/gorouter ``router/router.go`` serveHTTPS), so the stream works and the router learns
the client's address; without it the line breaks the TLS handshake and the client sees the
connection close mid-handshake. The client dials ``wss://doppler.<domain>:443`` directly, so the
verdict is about 443 alone (discovery on 80 has its own checks). The failing cell is the control:
the same LB and listener, routers without PROXY, must report ``proxy_header_rejected`` from the
router's own record of a failed TLS handshake whose first bytes are the PROXY line naming this
attempt's client address.
"""

from __future__ import annotations

from typing import Callable

import pytest

from harness.background import Background
from harness.deployment import Deployment
from harness.outcomes import Observation, Outcome
from harness.verdicts import classify_stream
from harness.witness import Evidence

pytestmark = [pytest.mark.topology(name) for name in ("tcp-same-port-proxy", "tcp-same-port-proxy-unread")]
N = 20


def observe_proxy_tls(ev: Evidence, n: int, client_ip: str) -> Observation:
    """The stream over TLS on 443 carried every envelope, and the router that upgraded it took the
    client's address from the PROXY line (else it would name the LB)."""
    seen = classify_stream(ev, n)
    if seen.outcome is not Outcome.PASS:
        return seen
    upgraded = [r for r in ev.upgrades() if r.get("tls")]
    source = [(r.get("proxy_protocol") or {}).get("source_ip") for r in upgraded]
    if not upgraded or source[-1] != client_ip:
        return Observation(Outcome.LB_IP_AS_CLIENT, f"TLS 101 records {len(upgraded)}, PROXY source {source}")
    return Observation(Outcome.PASS, f"{seen.detail} over TLS; PROXY source {source[-1]}")


@pytest.mark.check("proxy_v1_tls")
def test_proxy_v1_before_tls_on_443(deployment: Deployment, verdict: Callable[..., None]) -> None:
    endpoint = f"wss://{deployment.topology.fqdn('doppler')}:443"
    run = deployment.stream_logs("dev", N, timeout=20, extra=("--endpoint", endpoint))
    emitter = Background(deployment.emit, N) if run.wait_event("connected", 20) else None
    ev = deployment.evidence(run, run.result(60))
    if emitter:
        emitter.raise_if_failed()
    verdict("proxy_v1_tls", observe_proxy_tls(ev, N, deployment.client_ip()), evidence=ev,
            routers=[{k: r.get(k) for k in ("router", "tls", "status", "proxy_source", "tls_handshake_failed")}
                     for r in ev.routers])


@pytest.mark.topology("tcp-same-port-proxy", driver="haproxy")
def test_a_restarted_router_still_reads_the_proxy_line(deployment: Deployment) -> None:
    """The harness switches PROXY reading on in the running routers (``Deployment.runtime_env``);
    a router restarted mid-cell (as the failover checks do) must come back reading it, or every
    stream through it would fail with ``proxy_header_rejected`` (the unread cell above)."""
    routers = [deployment.nodes[f"router-{i}"] for i in range(deployment.topology.router_count)]
    for node in routers:
        node.restart()
    for node in routers:
        taken, code, out = node.ask("http://127.0.0.1:8080/health", lambda answer: answer.strip() == "ok")
        assert taken, (node.name, code, out)
    endpoint = f"wss://{deployment.topology.fqdn('doppler')}:443"
    run = deployment.stream_logs("dev", N, timeout=20, extra=("--endpoint", endpoint))
    emitter = Background(deployment.emit, N) if run.wait_event("connected", 20) else None
    seen = observe_proxy_tls(deployment.evidence(run, run.result(60)), N, deployment.client_ip())
    if emitter:
        emitter.raise_if_failed()
    assert seen.outcome is Outcome.PASS, seen
