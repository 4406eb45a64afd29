"""Traffic Controller subscribes to Doppler before gorilla's upgrade checks (cloudfoundry/
loggregator-release src/trafficcontroller/internal/proxy/stream_handler.go): with Doppler down
even a request whose Upgrade the LB stripped is answered 503, not 400."""

from __future__ import annotations

import pytest

from harness.deployment import Deployment


@pytest.mark.topology("http-only-elb", driver="nginx-no-upgrade")
def test_doppler_down_gives_503_before_any_upgrade_check(deployment: Deployment) -> None:
    doppler = deployment.nodes["doppler"].docker
    doppler.stop(timeout=1)
    try:
        run = deployment.stream_logs("dev", 1, timeout=10)
        ev = deployment.evidence(run, run.result(60))
    finally:
        doppler.start()
    assert ev.outcome["handshake_status"] == 503, ev.outcome
    assert [e["event"] for e in ev.tc if e["event"] in ("subscribe_failed", "handshake_rejected")] == \
        ["subscribe_failed"]
    assert ev.router_saw_upgrade() is False  # the LB did strip Upgrade: 400 would have come without the 503 rule
