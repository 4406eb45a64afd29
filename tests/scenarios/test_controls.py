"""Negative controls for the crafted-traffic and header checks: each makes its check report its own
specific failure, in a cell the matrix already brings up (so no extra cell starts).

Which control proves which check is listed in the README ("Negative controls"); the controls of
the fault, failover, idle and kernel checks sit next to those checks.
"""

from __future__ import annotations

import pytest

from harness.outcomes import Outcome
from harness.deployment import Deployment
from harness.verdicts import classify_rst, classify_stream
from tests.scenarios.test_crafted import OUT_OF_WINDOW, observe_split, rst_attempt, split_attempt

pytestmark = pytest.mark.topology("http-upgrade", driver="nginx")


def test_rst_outside_the_window_is_reported_as_ignored(deployment: Deployment) -> None:
    """crafted_rst: a RST the LB must drop (sequence number far outside its window) -> rst_ignored."""
    ev = rst_attempt(deployment, seq_offset=OUT_OF_WINDOW)
    assert ev.extra["injected"] and ev.extra["injected"]["in_window"] is False
    seen = classify_rst(ev)
    assert seen.outcome is Outcome.RST_IGNORED, seen
    assert ev.tc_closed_by() == "client"


def test_handshake_in_one_segment_is_reported_as_not_split(deployment: Deployment) -> None:
    """crafted_split_handshake: the same handshake written in one piece -> wire_not_split."""
    ev, segments = split_attempt(deployment, 4096)
    seen = observe_split(ev, segments)
    assert seen.outcome is Outcome.WIRE_NOT_SPLIT, seen


def test_a_stream_nobody_feeds_is_reported_incomplete(deployment: Deployment) -> None:
    """logs: a stream that expects envelopes no emitter sends -> incomplete (not pass)."""
    run = deployment.stream_logs("dev", 10, timeout=3)
    ev = deployment.evidence(run, run.result(30))
    seen = classify_stream(ev, 10)
    assert seen.outcome is Outcome.INCOMPLETE, seen


def test_evidence_is_bound_to_the_attempt(deployment: Deployment) -> None:
    """Two attempts back to back: each one's evidence holds its own router records and TC events
    and none of the other's (what an earlier test leaves behind cannot decide a verdict)."""
    first = deployment.stream_logs("dev", 0, timeout=1)
    ev1 = deployment.evidence(first, first.result(30))
    second = deployment.stream_logs("", 1, timeout=1)  # no token: TC answers 401
    ev2 = deployment.evidence(second, second.result(30))
    assert ev1.attempt != ev2.attempt
    assert ev1.routers and all(r["attempt"] == ev1.attempt for r in ev1.routers)
    assert ev2.routers and all(r["attempt"] == ev2.attempt for r in ev2.routers)
    assert [e["event"] for e in ev1.tc] == ["stream_open", "stream_closed"]
    assert [e["event"] for e in ev2.tc] == ["denied"]
