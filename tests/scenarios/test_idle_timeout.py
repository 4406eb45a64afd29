"""An idle log stream survives the LB's idle timeout only while keepalive pings come more often.

Every LB cuts idle connections (ELB 60 s, nginx proxy_read_timeout / proxy_timeout, HAProxy
timeout tunnel). The Traffic Controller pings every ~15 s, which keeps streams alive behind any LB
whose idle timeout is longer. Here the LB idle timeout is 4 s and the ping interval is either 1 s
(stream stays up) or 30 s (LB cuts it): both are asserted, per LB and per HTTP/TCP mode.
"""

from __future__ import annotations

from typing import Callable

import pytest

from harness.deployment import Deployment
from harness.verdicts import classify_idle

LB_IDLE = 4.0
HOLD = 10.0  # seconds the client keeps the idle stream open

SHORT_PINGS = {"TC_KEEPALIVE_INTERVAL": "1"}
LONG_PINGS = {"TC_KEEPALIVE_INTERVAL": "30"}



def _idle_stream(deployment: Deployment, verdict: Callable[..., None]) -> None:
    pings = deployment.tc_env()["TC_KEEPALIVE_INTERVAL"]
    result = deployment.stream_logs("dev", 0, timeout=HOLD).result(HOLD + 30)
    verdict("idle", classify_idle(result["outcome"]), column=f"idle: pings {pings}s, LB {LB_IDLE:g}s",
            outcome=result["outcome"], lb_idle_timeout=LB_IDLE)


@pytest.mark.topology("http-upgrade", tc=SHORT_PINGS, lb_idle=LB_IDLE)
def test_http_mode_stream_kept_alive_by_pings(deployment: Deployment, verdict: Callable[..., None]) -> None:
    _idle_stream(deployment, verdict)


@pytest.mark.topology("http-upgrade", tc=LONG_PINGS, lb_idle=LB_IDLE)
def test_http_mode_stream_cut_when_pings_are_rarer_than_idle_timeout(deployment: Deployment,
                                                                     verdict: Callable[..., None]) -> None:
    _idle_stream(deployment, verdict)


@pytest.mark.topology("tcp-same-port", tc=SHORT_PINGS, lb_idle=LB_IDLE)
def test_tcp_mode_stream_kept_alive_by_pings(deployment: Deployment, verdict: Callable[..., None]) -> None:
    _idle_stream(deployment, verdict)


@pytest.mark.topology("tcp-same-port", tc=LONG_PINGS, lb_idle=LB_IDLE)
def test_tcp_mode_stream_cut_when_pings_are_rarer_than_idle_timeout(deployment: Deployment,
                                                                    verdict: Callable[..., None]) -> None:
    _idle_stream(deployment, verdict)
