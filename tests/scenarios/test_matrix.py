"""The qualification matrix: every topology x every LB under test that can run it.

Each test performs one real exchange through the cell's containers, classifies what happened
(``harness.verdicts``) and hands it to ``verdict``, which records it for the report and asserts it
equals what the seed predicts for this cell, expected failures included.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from harness.deployment import APP_GUID, Deployment
from harness.protocol.headers import get
from harness.verdicts import PASS, classify_status, classify_stream, classify_xff

pytestmark = pytest.mark.matrix
N = 1000
Verdict = Callable[..., None]


def _router_saw_upgrade(deployment: Deployment, path: str) -> bool | None:
    seen = [r for r in deployment.router_requests() if r["path"].split("?")[0] == path]
    return seen[-1]["upgrade"] if seen else None


def _stream(deployment: Deployment, token: str, expect: int, emit: bool) -> tuple[str, dict[str, Any]]:
    run = deployment.stream_logs(token, expect, timeout=60)
    if run.wait_event("connected", 15) and emit:
        deployment.emit(expect)
    result = run.result(90)
    outcome = result["outcome"]
    observed = classify_stream(outcome, result["delivery"] if emit else None, expect if emit else 0,
                               _router_saw_upgrade(deployment, f"/apps/{APP_GUID}/stream"))
    return observed, result


def test_logs(deployment: Deployment, verdict: Verdict) -> None:
    observed, result = _stream(deployment, "dev", N, emit=True)
    verdict("logs", observed, endpoint=result["endpoint"], outcome=result["outcome"], delivery=result["delivery"])


def test_firehose(deployment: Deployment, verdict: Verdict) -> None:
    nozzles = [deployment.firehose("admin", "shared"), deployment.firehose("admin", "shared"),
               deployment.firehose("admin", "solo")]
    connected = [bool(n.wait_event("connected", 15)) for n in nozzles]
    if all(connected):
        deployment.emit(N, rate=2000)
    results = [n.result(90) for n in nozzles]
    a, b, c = (set(r["seqs"] or []) for r in results)
    if all(connected):
        split_ok = a.isdisjoint(b) and a | b == set(range(N)) and c == set(range(N))
        observed = PASS if split_ok else f"bad split: |a|={len(a)} |b|={len(b)} |a&b|={len(a & b)} |c|={len(c)}"
    else:
        observed = classify_stream(results[0]["outcome"], None, 0,
                                   _router_saw_upgrade(deployment, "/firehose/shared"))
    verdict("firehose", observed, shared=[len(a), len(b)], solo=len(c))


def test_recent_logs(deployment: Deployment, verdict: Verdict) -> None:
    deployment.emit(20, start=500_000)
    result = deployment.recent_logs("dev")
    observed = classify_status(result["status"], 200, result.get("body", ""), result.get("error"))
    if observed == PASS and not set(range(500_000, 500_020)) <= set(result["seqs"]):
        observed = f"missing envelopes: got {len(result['seqs'])}"
    verdict("recent_logs", observed, url=result["url"], status=result["status"])


def _expect_status(result: dict[str, Any], status: int, deployment: Deployment, path: str) -> str:
    outcome = result["outcome"]
    if outcome.get("handshake_status") == status:
        return PASS
    return classify_stream(outcome, None, 0, _router_saw_upgrade(deployment, path))


def test_auth_401(deployment: Deployment, verdict: Verdict) -> None:
    result = deployment.stream_logs("", 1, timeout=10).result(30)
    observed = _expect_status(result, 401, deployment, f"/apps/{APP_GUID}/stream")
    challenge = [v for k, v in result["outcome"]["handshake_headers"] if k.lower() == "www-authenticate"]
    if observed == PASS and challenge != ["Basic"]:
        observed = "401 without WWW-Authenticate: Basic"
    verdict("auth_401", observed, outcome=result["outcome"])


def test_auth_404(deployment: Deployment, verdict: Verdict) -> None:
    result = deployment.stream_logs("other", 1, timeout=10).result(30)
    verdict("auth_404", _expect_status(result, 404, deployment, f"/apps/{APP_GUID}/stream"),
            outcome=result["outcome"])


def test_xff(deployment: Deployment, verdict: Verdict) -> None:
    result = deployment.http_get("echo")
    if result["status"] != 200:
        observed = classify_status(result["status"], 200, str(result["body"]), result.get("error"))
        return verdict("xff", observed, status=result["status"])
    headers = [tuple(h) for h in result["body"]["headers"]]
    xff = get(headers, "X-Forwarded-For")
    observed = classify_xff(xff, deployment.client_ip(), deployment.lb_ips(), deployment.fault_proxy_ips())
    verdict("xff", observed, x_forwarded_for=xff,
            client=deployment.client_ip())


def test_xfp(deployment: Deployment, verdict: Verdict) -> None:
    schemes = ["http"] + (["https"] if _serves_tls(deployment) else [])
    seen: dict[str, str | None] = {}
    observed = PASS
    for scheme in schemes:
        result = deployment.client_run("http", f"{scheme}://{deployment.topology.fqdn('echo')}/").result(30)
        if result["status"] != 200:
            observed = classify_status(result["status"], 200, str(result["body"]), result.get("error"))
            break
        seen[scheme] = get([tuple(h) for h in result["body"]["headers"]], "X-Forwarded-Proto")
        if seen[scheme] != scheme:
            observed = f"X-Forwarded-Proto {seen[scheme]!r} on {scheme}"
    verdict("xfp", observed, seen=seen)


def _serves_tls(deployment: Deployment) -> bool:
    lb = deployment.topology.lb(deployment.topology.dns["echo"])
    return any(lst.port == 443 for lst in lb.listeners)
