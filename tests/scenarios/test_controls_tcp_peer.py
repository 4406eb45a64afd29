"""Negative controls of the Scapy-peer checks (``tests/scenarios/test_tcp_peer.py``): the same
attempt without the thing each check is about must be reported as its own failure, not a pass. The
cell's four controls run at once (``concurrently``): the one with a flood reads the other app's stream.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.deployment import Deployment
from harness.outcomes import Observation, Outcome
from tests.scenarios.test_tcp_peer import (APP, ENABLED, LB_IDLE_S, concurrently, half_close_attempt,
                                           segments_attempt, zero_window_attempt)

#: The checks' own cell configuration (the LB's idle timeout as in test_tcp_peer).
pytestmark = [pytest.mark.topology("tcp-same-port", driver="nginx", lb_idle=LB_IDLE_S),
              pytest.mark.skipif(not ENABLED, reason="Scapy-peer checks skipped: HARNESS_TCP_PEER=0")]


def control(dep: Deployment, name: str) -> tuple[Observation, dict[str, Any]]:
    """This cell's control attempt ``name``; all four run together the first time one is asked for."""
    return concurrently(dep, "_tcp_peer_controls", {
        "inorder": lambda: segments_attempt(dep, "inorder"),
        "openwindow": lambda: zero_window_attempt(dep, "openwindow", flood=1),
        "shut_no_flood": lambda: zero_window_attempt(dep, "zerowindow", flood=0, app=APP),
        "hold": lambda: half_close_attempt(dep, "hold")}, name)


def test_a_request_in_one_segment_is_reported_as_not_reordered(deployment: Deployment) -> None:
    """tcp_peer_segments: the request in one in-order segment -> wire_not_reordered."""
    seen, facts = control(deployment, "inorder")
    assert seen.outcome is Outcome.WIRE_NOT_REORDERED, (seen, facts)


def test_a_consumer_with_its_window_open_is_not_reported_as_a_zero_window(deployment: Deployment) -> None:
    """tcp_peer_zero_window: the same flood to a peer that keeps its window open ->
    impairment_not_applied (no zero-window ACK went out; whatever happened next proves nothing)."""
    seen, facts = control(deployment, "openwindow")
    assert seen.outcome is Outcome.IMPAIRMENT_NOT_APPLIED, (seen, facts)


def test_a_shut_window_with_nothing_to_send_is_reported_still_open(deployment: Deployment) -> None:
    """tcp_peer_zero_window: the window shut but no flood: the TC's writer never blocks, so no
    slow-consumer cut -> still_open (a pass really rests on the TC's 5 s cut)."""
    seen, facts = control(deployment, "shut_no_flood")
    assert seen.outcome is Outcome.STILL_OPEN, (seen, facts)


def test_a_client_that_never_half_closes_is_reported_still_open(deployment: Deployment) -> None:
    """tcp_peer_half_close: the same stream without the client's FIN -> still_open."""
    seen, facts = control(deployment, "hold")
    assert seen.outcome is Outcome.STILL_OPEN, (seen, facts)
