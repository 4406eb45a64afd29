"""Traffic Controller behaviours the LB path must preserve: keepalive and slow-consumer cut-off.

Timings are shrunk for the test (real: ping every 15 s, 30 s for a pong, 5 s slow consumer).
"""

from __future__ import annotations

import pytest

from harness.deployment import Deployment
from harness.cf.trafficcontroller import KEEPALIVE_CLOSE_REASON

FAST = {"TC_KEEPALIVE_INTERVAL": "1", "TC_KEEPALIVE_TIMEOUT": "2"}
pytestmark = pytest.mark.topology("http-upgrade", driver="nginx", tc=FAST)


def test_client_that_never_answers_pings_is_closed_with_1008(deployment: Deployment) -> None:
    run = deployment.client_run("mute", "--api", deployment.api_url, "--app", "6a1b9a0e-2b3c-4d5e-8f90-1a2b3c4d5e6f",
                                "--token", "bearer dev", "--seconds", "4")
    result = run.result(30)
    assert result["status"] == 101
    assert result["frames"]["ping"] >= 1
    assert result["close"] == {"code": 1008, "reason": KEEPALIVE_CLOSE_REASON}


def test_answering_client_outlives_several_keepalive_rounds(deployment: Deployment) -> None:
    result = deployment.stream_logs("dev", 0, timeout=6).result(30)
    assert result["outcome"]["connected"] and result["outcome"]["closed_by"] == "client"


@pytest.mark.topology("http-upgrade", driver="nginx", tc={"TC_SLOW_CONSUMER_TIMEOUT": "2"})
def test_consumer_that_stops_reading_is_cut_as_slow(deployment: Deployment) -> None:
    run = deployment.client_run("mute", "--api", deployment.api_url, "--app", "6a1b9a0e-2b3c-4d5e-8f90-1a2b3c4d5e6f",
                                "--token", "bearer dev", "--seconds", "12", "--drain", "20")
    assert run.wait_event("connected", 20)
    code, out = deployment.nodes["app"].exec(["python3", "-m", "harness.cf", "emit", "--doppler", "ws://doppler:8082",
                                              "--app", "6a1b9a0e-2b3c-4d5e-8f90-1a2b3c4d5e6f", "--count", "30000",
                                              "--rate", "5000", "--size", "2000"])
    assert code == 0, out
    result = run.result(60)
    assert result["close"] != {"code": 1008, "reason": KEEPALIVE_CLOSE_REASON}, "keepalive fired first"
    tc_log = deployment.nodes["tc"].logs()
    assert '"event": "slow_consumer"' in tc_log and "Doppler Proxy: Slow Consumer from" in tc_log
