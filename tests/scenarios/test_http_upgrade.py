"""Seed strategy 1 (`http-upgrade`): an LB in HTTP mode that passes Upgrade carries the log path.

Runs once per LB under test (``--lb``); each test asserts an outcome of the real containers.
"""

from __future__ import annotations

import pytest

from harness.deployment import APP_GUID, Deployment
from harness.protocol.headers import get

pytestmark = pytest.mark.topology("http-upgrade")
N = 1000


def test_cf_logs_stream_delivers_every_line_in_order(deployment: Deployment) -> None:
    run = deployment.stream_logs("dev", N)
    assert run.wait_event("connected", 20), run.raw
    deployment.emit(N)
    result = run.result(60)
    delivery = result["delivery"]
    assert result["outcome"]["error"] is None
    assert (delivery["unique"], delivery["lost"], delivery["duplicates"], delivery["out_of_order"]) == (N, 0, 0, 0)
    assert result["endpoint"] == f"ws://doppler.{deployment.topology.system_domain}:80"


def test_firehose_subscribers_sharing_an_id_split_the_stream(deployment: Deployment) -> None:
    shard_a = deployment.firehose("admin", "shared-nozzle")
    shard_b = deployment.firehose("admin", "shared-nozzle")
    solo = deployment.firehose("admin", "solo-nozzle")
    for run in (shard_a, shard_b, solo):
        assert run.wait_event("connected", 20), run.raw
    deployment.emit(N, rate=2000)
    a, b, c = (set(run.result(60)["seqs"]) for run in (shard_a, shard_b, solo))
    assert a.isdisjoint(b), f"{len(a & b)} envelopes reached both nozzles of one subscription"
    assert a | b == set(range(N))
    assert a and b, "random sharding gave one nozzle nothing out of 1000"
    assert c == set(range(N))


def test_forwarding_headers_reach_the_app(deployment: Deployment) -> None:
    result = deployment.http_get("echo")
    assert result["status"] == 200
    seen = [tuple(h) for h in result["body"]["headers"]]
    xff = [ip.strip() for ip in (get(seen, "X-Forwarded-For") or "").split(",")]
    assert xff[0] == deployment.client_ip(), f"app saw X-Forwarded-For {xff}"
    assert get(seen, "X-Forwarded-Proto") == "http"
    assert get(seen, "X-Vcap-Request-Id")


def test_app_stream_without_token_is_401_with_basic_challenge(deployment: Deployment) -> None:
    outcome = deployment.stream_logs("", 1, timeout=10).result(30)["outcome"]
    assert outcome["handshake_status"] == 401
    assert ["WWW-Authenticate", "Basic"] in outcome["handshake_headers"]


def test_app_stream_for_an_app_the_user_cannot_read_is_404(deployment: Deployment) -> None:
    outcome = deployment.stream_logs("other", 1, timeout=10).result(30)["outcome"]
    assert outcome["handshake_status"] == 404  # TC maps CC's 403/404 to 404


def test_firehose_without_firehose_scope_is_401(deployment: Deployment) -> None:
    run = deployment.client_run("firehose", "--api", deployment.api_url, "--token", "bearer dev", "--timeout", "10")
    outcome = run.result(30)["outcome"]
    assert outcome["handshake_status"] == 401
    assert outcome["handshake_body"] == "You are not authorized. invalid authorization"


def test_recent_logs_return_what_was_emitted(deployment: Deployment) -> None:
    deployment.emit(50, start=100_000)
    result = deployment.recent_logs("dev")
    assert result["status"] == 200
    assert set(range(100_000, 100_050)) <= set(result["seqs"])


def test_unknown_host_gets_gorouter_404(deployment: Deployment) -> None:
    result = deployment.client_run("http", "http://api.sys.example.com/",
                                   "--header", "Host: nosuch.apps.example.com").result(30)
    assert result["status"] == 404
    assert result["headers"].get("X-Cf-Routererror") == "unknown_route"
    assert result["body"] == "404 Not Found: Requested route ('nosuch.apps.example.com') does not exist.\n"


@pytest.mark.topology("http-upgrade", driver="nginx-no-upgrade")
def test_lb_that_drops_upgrade_fails_the_stream_with_400(deployment: Deployment) -> None:
    """The customer mistake: no proxy_http_version 1.1 / Upgrade / Connection in nginx."""
    outcome = deployment.stream_logs("dev", 1, timeout=10).result(30)["outcome"]
    assert outcome["error"] == "websocket: bad handshake"
    assert outcome["handshake_status"] == 400
    assert outcome["handshake_body"] == "Bad Request\n"  # gorilla's reply, passed back unchanged
    seen = [r for r in deployment.router_requests() if r["path"] == f"/apps/{APP_GUID}/stream"]
    assert seen, "the request never reached a router"
    assert seen[-1]["upgrade"] is False and get([tuple(h) for h in seen[-1]["headers"]], "Upgrade") is None
    assert seen[-1]["http_version"] == "1.0"  # nginx's default upstream protocol
