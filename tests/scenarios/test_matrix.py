"""The qualification matrix: every topology x every LB under test that can run it.

Each test makes real exchanges through the cell's containers, each one a client run with its own
attempt id; the witness gathers that attempt's evidence only (``harness.witness``), a table
classifies it (``harness.verdicts``), and ``verdict`` records it for the report and asserts it equals
what the seed predicts for this cell, expected failures included.
"""

from __future__ import annotations

from typing import Callable

import pytest

from harness.deployment import APP_GUID, Deployment
from harness.outcomes import Observation, Outcome
from harness.protocol.headers import get
from harness.verdicts import (classify_firehose, classify_handshake_status, classify_status, classify_stream,
                              classify_xff, classify_xfp)
from harness.witness import Evidence

pytestmark = pytest.mark.matrix
N = 1000
Verdict = Callable[..., None]


@pytest.mark.check("logs")
def test_logs(deployment: Deployment, verdict: Verdict) -> None:
    run = deployment.stream_logs("dev", N, timeout=60)
    if run.wait_event("connected", 15):
        deployment.emit(N)
    ev = deployment.evidence(run, run.result(90))
    verdict("logs", classify_stream(ev, N), evidence=ev, endpoint=ev.client["endpoint"],
            delivery=ev.client["delivery"])


@pytest.mark.check("firehose")
def test_firehose(deployment: Deployment, verdict: Verdict) -> None:
    nozzles = [deployment.firehose("admin", "shared"), deployment.firehose("admin", "shared"),
               deployment.firehose("admin", "solo")]
    if all([bool(n.wait_event("connected", 15)) for n in nozzles]):
        deployment.emit(N, rate=2000)
    evidence = [deployment.evidence(n, n.result(90)) for n in nozzles]
    seen = classify_firehose(evidence, N)
    verdict("firehose", seen, evidence=evidence[0], attempts=[ev.attempt for ev in evidence])


@pytest.mark.check("recent_logs")
def test_recent_logs(deployment: Deployment, verdict: Verdict) -> None:
    deployment.emit(20, start=500_000)
    run = deployment.client_run("recent", "--api", deployment.api_url, "--app", APP_GUID, "--token", "bearer dev")
    ev = deployment.evidence(run, run.result(30))
    seen = classify_status(ev, 200)
    if seen.outcome is Outcome.PASS and not set(range(500_000, 500_020)) <= set(ev.client["seqs"]):
        seen = Observation(Outcome.INCOMPLETE, f"got {len(ev.client['seqs'])} of the 20 envelopes emitted")
    verdict("recent_logs", seen, evidence=ev, url=ev.client["url"], status=ev.client["status"])


def _handshake(deployment: Deployment, token: str) -> Evidence:
    run = deployment.stream_logs(token, 1, timeout=10)
    return deployment.evidence(run, run.result(30))


@pytest.mark.check("auth_401")
def test_auth_401(deployment: Deployment, verdict: Verdict) -> None:
    ev = _handshake(deployment, "")
    verdict("auth_401", classify_handshake_status(ev, 401), evidence=ev, outcome=ev.outcome)


@pytest.mark.check("auth_404")
def test_auth_404(deployment: Deployment, verdict: Verdict) -> None:
    ev = _handshake(deployment, "other")
    verdict("auth_404", classify_handshake_status(ev, 404), evidence=ev, outcome=ev.outcome)


def _echo(deployment: Deployment, scheme: str) -> Evidence:
    run = deployment.client_run("http", f"{scheme}://{deployment.topology.fqdn('echo')}/")
    return deployment.evidence(run, run.result(30))


def _echoed(ev: Evidence, name: str) -> str | None:
    return get([tuple(h) for h in ev.client["body"]["headers"]], name)


@pytest.mark.check("xff")
def test_xff(deployment: Deployment, verdict: Verdict) -> None:
    ev = _echo(deployment, "http")
    seen = classify_status(ev, 200)
    if seen.outcome is Outcome.PASS:
        seen = classify_xff(_echoed(ev, "X-Forwarded-For"), deployment.client_ip(), deployment.lb_ips(),
                            deployment.fault_proxy_ips())
    verdict("xff", seen, evidence=ev, client=deployment.client_ip())


@pytest.mark.check("xfp")
def test_xfp(deployment: Deployment, verdict: Verdict) -> None:
    seen: dict[str, str | None] = {}
    observed: Observation | None = None
    for scheme in ["http"] + (["https"] if _serves_tls(deployment) else []):
        ev = _echo(deployment, scheme)
        status = classify_status(ev, 200)
        if status.outcome is not Outcome.PASS:
            observed = status
            break
        seen[scheme] = _echoed(ev, "X-Forwarded-Proto")
    verdict("xfp", observed or classify_xfp(seen), evidence=ev, seen=seen)


def _serves_tls(deployment: Deployment) -> bool:
    lb = deployment.topology.lb(deployment.topology.dns["echo"])
    return any(lst.port == 443 for lst in lb.listeners)

