"""Crafted traffic through every LB: a handshake cut into tiny TCP segments, legal but unusual
header casing, and a TCP RST injected into a live stream with Scapy. Each verdict joins the matrix."""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import pytest

from harness.capture import rst_injector
from harness.deployment import APP_GUID, Deployment
from harness.protocol import wire
from harness.verdicts import PASS, classify_stream

pytestmark = [pytest.mark.topology(name) for name in ("http-upgrade", "http-only-elb", "tcp-same-port")]
Verdict = Callable[..., None]


def _url(dep: Deployment) -> str:
    return f"ws://{dep.topology.fqdn('doppler')}:80/apps/{APP_GUID}/stream"


def _outcome(dep: Deployment, result: dict[str, Any]) -> str:
    if result["status"] == 101:
        return PASS
    seen = [r for r in dep.router_requests() if r["path"] == f"/apps/{APP_GUID}/stream"]
    outcome = {"handshake_status": result["status"], "handshake_body": "", "error": result["error"]}
    return classify_stream(outcome, None, 0, seen[-1]["upgrade"] if seen else None)


def test_handshake_split_into_tiny_segments(deployment: Deployment, verdict: Verdict) -> None:
    since = time.time()
    result = deployment.client_run("crafted", _url(deployment), "--token", "bearer dev", "--split", "3").result(60)
    time.sleep(0.5)
    streams = [s for s in wire.streams(deployment.probe("client").packets(since)) if s.server[1] == 80]
    segments = max((len(s.c2s_segments) for s in streams), default=0)
    observed = _outcome(deployment, result)
    if observed == PASS and segments < 20:
        observed = f"handshake was not split on the wire ({segments} segments)"
    verdict("crafted_split_handshake", observed, segments_on_wire=segments, status=result["status_line"])


def test_unusual_but_legal_header_casing(deployment: Deployment, verdict: Verdict) -> None:
    result = deployment.client_run("crafted", _url(deployment), "--token", "bearer dev", "--split", "4096",
                                   "--casing", "odd").result(30)
    verdict("crafted_header_casing", _outcome(deployment, result), status=result["status_line"])


def test_rst_injected_into_a_live_stream(deployment: Deployment, verdict: Verdict) -> None:
    """Scapy, in the client's namespace, resets the client->LB connection with an in-window RST."""
    client = deployment.nodes["client"].docker
    closed_before = deployment.nodes["tc"].logs().count('"event": "stream_closed"')
    injector = rst_injector(deployment.tags["cf"], client.id, f"hx-{deployment.uid}-inject", deployment.labels(),
                            port=80, after=3).start()
    try:
        run = deployment.client_run("logs", "--endpoint", f"ws://{deployment.topology.fqdn('doppler')}:80",
                                    "--app", APP_GUID, "--token", "bearer dev", "--timeout", "15")
        result = run.result(45)
        injector.get_wrapped_container().wait(timeout=30)
        lines = [json.loads(line) for line in injector.get_logs()[0].decode().splitlines() if '"result"' in line]
    finally:
        injector.stop()
    outcome = result["outcome"]
    tc_closed = deployment.nodes["tc"].logs().count('"event": "stream_closed"') > closed_before
    if not outcome["connected"]:
        seen = [r for r in deployment.router_requests() if r["path"] == f"/apps/{APP_GUID}/stream"]
        observed = classify_stream(outcome, None, 0, seen[-1]["upgrade"] if seen else None)
    elif outcome["closed_by"] == "server":
        observed = "stream_cut"
    elif tc_closed:
        observed = "half_open"
    else:
        observed = "rst ignored: the stream stayed up end to end"
    verdict("crafted_rst", observed, injected=lines[-1] if lines else None, tc_closed=tc_closed, outcome=outcome)
