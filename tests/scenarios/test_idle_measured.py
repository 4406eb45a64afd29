"""The LB's own idle cut, measured at real timing, for LBs whose idle timeout the harness does not
set: a customer's config (``--customer-config``) and vendor drivers without
``honours_idle_timeout`` (e.g. Caddy's ``reverse_proxy``, which never cuts upgraded streams).

The Traffic Controller pings once at the stream's open and then not again (pings off), the client
holds the stream idle for up to ``HARNESS_IDLE_BOUND`` seconds (120), and the cut is read from the
Traffic Controller's own events for this attempt (``stream_open`` to ``stream_closed`` with
``lost``: the LB closed the connection, no close frame). ``classify_idle_measured`` judges it
against the real keepalive (a ping every 15 s plus a round trip) and ELB's 60 s default. Drivers
that honour ``lb.idle_timeout`` are judged by the cheap lb_idle variants (test_idle_timeout.py)
instead, so by default (built-in drivers) this adds no cell; each cell it does run costs up to the
bound (measured: ~5 s for a 5 s cut, 120 s for an LB that never cuts).
"""

from __future__ import annotations

import os
from typing import Callable

import pytest

from harness.deployment import Deployment
from harness.verdicts import classify_idle_measured
from harness.witness import Evidence

#: Pings off: after the first ping at open, the next would come after this many seconds.
PINGS_OFF = {"TC_KEEPALIVE_INTERVAL": "100000"}
BOUND = float(os.environ.get("HARNESS_IDLE_BOUND", "120"))


def measured_idle_attempt(deployment: Deployment, bound: float = BOUND) -> Evidence:
    """One stream held idle (nothing emitted) for at most ``bound`` s: its evidence."""
    run = deployment.stream_logs("dev", 0, timeout=bound)
    return deployment.evidence(run, run.result(bound + 30))


@pytest.mark.check("idle_measured")
@pytest.mark.idle_measured(tc=PINGS_OFF)
def test_idle_cut_measured_at_real_timing(deployment: Deployment, verdict: Callable[..., None]) -> None:
    ev = measured_idle_attempt(deployment)
    verdict("idle_measured", classify_idle_measured(ev, BOUND), evidence=ev, outcome=ev.outcome,
            tc_closed_by=ev.tc_closed_by(), bound_s=BOUND)
