"""Traffic Controller behaviours the LB path must preserve: keepalive and slow-consumer cut-off.

Timings are shrunk for the test (real: ping every 15 s, 30 s for a pong, 5 s slow consumer). Each
assertion reads one attempt's evidence: what the client saw, and the Traffic Controller's events
for that same attempt (never the TC's whole log, where another test's events also sit).
"""

from __future__ import annotations

import pytest

from harness.cf.trafficcontroller import KEEPALIVE_CLOSE_REASON
from harness.deployment import APP_GUID, Deployment
from harness.outcomes import Outcome
from harness.verdicts import classify_idle

FAST = {"TC_KEEPALIVE_INTERVAL": "1", "TC_KEEPALIVE_TIMEOUT": "2"}
pytestmark = pytest.mark.topology("http-upgrade", driver="nginx", tc=FAST)


def test_client_that_never_answers_pings_is_closed_with_1008(deployment: Deployment) -> None:
    run = deployment.client_run("mute", "--api", deployment.api_url, "--app", APP_GUID, "--token", "bearer dev",
                                "--seconds", "4")
    ev = deployment.evidence(run, run.result(30))
    assert ev.client["status"] == 101
    assert ev.client["frames"]["ping"] >= 1
    assert ev.client["close"] == {"code": 1008, "reason": KEEPALIVE_CLOSE_REASON}
    assert len(ev.tc_events("keepalive_timeout")) == 1, ev.tc
    closed = ev.tc_events("stream_closed")
    assert closed and closed[0]["closed_by"] == "tc", ev.tc  # TC sent the first close frame (1008, above)


def test_answering_client_outlives_several_keepalive_rounds(deployment: Deployment) -> None:
    run = deployment.stream_logs("dev", 0, timeout=6)
    ev = deployment.evidence(run, run.result(30))
    seen = classify_idle(ev)  # held open until the client closed it, and the TC saw the client close
    assert seen.outcome is Outcome.PASS and ev.tc_closed_by() == "client", (seen, ev.tc)
    assert not ev.tc_events("keepalive_timeout"), ev.tc


@pytest.mark.topology("http-upgrade", driver="nginx", tc={"TC_SLOW_CONSUMER_TIMEOUT": "2"})
def test_consumer_that_stops_reading_is_cut_as_slow(deployment: Deployment) -> None:
    run = deployment.client_run("mute", "--api", deployment.api_url, "--app", APP_GUID, "--token", "bearer dev",
                                "--seconds", "12", "--drain", "20")
    assert run.wait_event("connected", 20)
    # 60 MB in 20 KB lines: the path (socket buffers, LB) holds ~6-13 MB here, so it fills within
    # seconds of the client going mute even on a loaded machine. 2 KB lines cost ten times the CPU
    # per byte in every hop; in a loaded CI run they had not filled it when the 12 s were up, the
    # client read again and the keepalive ended the stream instead.
    deployment.emit(3000, rate=500, size=20000)
    ev = deployment.evidence(run, run.result(60))
    assert ev.client["close"] != {"code": 1008, "reason": KEEPALIVE_CLOSE_REASON}, "keepalive fired first"
    slow = ev.tc_events("slow_consumer")
    assert len(slow) == 1 and slow[0]["message"].startswith("Doppler Proxy: Slow Consumer from"), ev.tc
    assert not ev.tc_events("keepalive_timeout"), ev.tc
    closed = ev.tc_events("stream_closed")
    assert closed and closed[0]["closed_by"] == "tc", ev.tc
