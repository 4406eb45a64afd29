"""An idle log stream survives the LB's idle timeout only while keepalive pings come more often.

Every LB cuts idle connections (ELB 60 s, nginx proxy_read_timeout / proxy_timeout, HAProxy
timeout tunnel). The Traffic Controller pings every ~15 s, which keeps streams alive behind any LB
whose idle timeout is longer. Here the LB idle timeout is 4 s and the ping interval is either 1 s
(stream stays up) or 30 s (LB cuts it): both are asserted, per LB and per HTTP/TCP mode.

One attempt decides each verdict (``classify_idle``): kept alive means the client itself closed
the stream at the end; an idle cut means the client saw 1006 and the Traffic Controller lost the
same attempt's connection (no close frame). The negative control is in ``test_controls_faults.py``.
"""

from __future__ import annotations

from typing import Callable

import pytest

from harness.deployment import Deployment
from harness.verdicts import classify_idle
from harness.witness import Evidence

LB_IDLE = 4.0
HOLD = 10.0  # seconds the client keeps the idle stream open

SHORT_PINGS = {"TC_KEEPALIVE_INTERVAL": "1"}
LONG_PINGS = {"TC_KEEPALIVE_INTERVAL": "30"}


def column(pings: dict[str, str]) -> str:
    """The report column of the idle check in a cell with these TC timings."""
    return f"idle: pings {pings['TC_KEEPALIVE_INTERVAL']}s, LB {LB_IDLE:g}s"


def idle_attempt(deployment: Deployment, hold: float = HOLD) -> Evidence:
    """A stream nobody feeds, held open by the client for ``hold`` s: that attempt's evidence
    (the client's end and, for the same attempt, who closed it as the Traffic Controller saw it)."""
    run = deployment.stream_logs("dev", 0, timeout=hold)
    return deployment.evidence(run, run.result(hold + 30))


def _idle_stream(deployment: Deployment, verdict: Callable[..., None]) -> None:
    ev = idle_attempt(deployment)
    verdict("idle", classify_idle(ev), column=column(deployment.tc_env()), evidence=ev, outcome=ev.outcome,
            tc_closed_by=ev.tc_closed_by(), lb_idle_timeout=LB_IDLE)


@pytest.mark.check("idle", column=column(SHORT_PINGS))
@pytest.mark.topology("http-upgrade", tc=SHORT_PINGS, lb_idle=LB_IDLE)
@pytest.mark.waits(18)
def test_http_mode_stream_kept_alive_by_pings(deployment: Deployment, verdict: Callable[..., None]) -> None:
    _idle_stream(deployment, verdict)


@pytest.mark.check("idle", column=column(LONG_PINGS))
@pytest.mark.topology("http-upgrade", tc=LONG_PINGS, lb_idle=LB_IDLE)
def test_http_mode_stream_cut_when_pings_are_rarer_than_idle_timeout(deployment: Deployment,
                                                                     verdict: Callable[..., None]) -> None:
    _idle_stream(deployment, verdict)


@pytest.mark.check("idle", column=column(SHORT_PINGS))
@pytest.mark.topology("tcp-same-port", tc=SHORT_PINGS, lb_idle=LB_IDLE)
@pytest.mark.waits(18)
def test_tcp_mode_stream_kept_alive_by_pings(deployment: Deployment, verdict: Callable[..., None]) -> None:
    _idle_stream(deployment, verdict)


@pytest.mark.check("idle", column=column(LONG_PINGS))
@pytest.mark.topology("tcp-same-port", tc=LONG_PINGS, lb_idle=LB_IDLE)
def test_tcp_mode_stream_cut_when_pings_are_rarer_than_idle_timeout(deployment: Deployment,
                                                                    verdict: Callable[..., None]) -> None:
    _idle_stream(deployment, verdict)
