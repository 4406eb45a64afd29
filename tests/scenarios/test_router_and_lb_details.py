"""Details the matrix summarises in one word, asserted in full on one LB each."""

from __future__ import annotations

import pytest

from harness.deployment import Deployment
from harness.protocol.headers import get


@pytest.mark.topology("http-upgrade", driver="nginx")
def test_unknown_host_gets_gorouter_404(deployment: Deployment) -> None:
    result = deployment.client_run("http", "http://api.sys.example.com/",
                                   "--header", "Host: nosuch.apps.example.com").result(30)
    assert result["status"] == 404
    assert result["headers"].get("X-Cf-Routererror") == "unknown_route"
    assert result["body"] == "404 Not Found: Requested route ('nosuch.apps.example.com') does not exist.\n"


@pytest.mark.topology("http-only-elb", driver="nginx-no-upgrade")
def test_nginx_without_upgrade_headers_sends_http10_plain_get(deployment: Deployment) -> None:
    """The customer mistake: no proxy_http_version 1.1 / Upgrade / Connection in nginx."""
    run = deployment.stream_logs("dev", 1, timeout=10)
    ev = deployment.evidence(run, run.result(30))
    assert ev.outcome["error"] == "websocket: bad handshake"
    assert ev.outcome["handshake_status"] == 400
    assert ev.outcome["handshake_body"] == "Bad Request\n"  # gorilla's reply, passed back unchanged
    seen = ev.stream_requests()
    assert seen, "the request never reached a router"
    assert seen[-1]["upgrade"] is False and get([tuple(h) for h in seen[-1]["headers"]], "Upgrade") is None
    assert seen[-1]["http_version"] == "1.0"  # nginx's default upstream protocol
    assert [e["status"] for e in ev.tc_events("handshake_rejected")] == [400]


@pytest.mark.topology("http-only-elb", driver="elb")
def test_elb_http_listener_strips_upgrade_and_adds_forwarded_port(deployment: Deployment) -> None:
    run = deployment.stream_logs("dev", 1, timeout=10)
    ev = deployment.evidence(run, run.result(30))
    assert (ev.outcome["handshake_status"], ev.outcome["handshake_body"]) == (400, "Bad Request\n")
    seen = ev.stream_requests()[-1]
    headers = [tuple(h) for h in seen["headers"]]
    assert get(headers, "Upgrade") is None and get(headers, "X-Forwarded-Port") == "443"
    assert get(headers, "X-Forwarded-Proto") == "https"
    assert '"forwarded_upgrade": false' in deployment.nodes["lb"].logs()
