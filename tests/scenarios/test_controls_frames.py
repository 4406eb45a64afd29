"""Negative controls of the frame-fidelity checks (``tests/scenarios/test_frames.py``): each makes
its check report its own specific failure, through the LB of a cell the matrix already brings up.

The TC side deviates from the script the client holds (``--mangle``: one changed byte in a
fragment, a changed ping payload, close 1001 instead of 1008, the pipelined message dropped), the
emitter sends a line one byte short, the handshake lacks the ``Upgrade`` token, or the straight
attempt is the one that deviates (``baseline_failed``, not a fault blamed on the LB).
"""

from __future__ import annotations

import pytest

from harness.frame_checks import observe
from harness.outcomes import Outcome
from harness.deployment import Deployment
from harness.protocol.frames import MAX_LOG_LINE
from tests.scenarios.test_frames import attempt, log_line_attempts, scripted

pytestmark = pytest.mark.topology("http-upgrade", driver="nginx")


@pytest.mark.parametrize(("scenario", "outcome"), [
    ("fragments", Outcome.FRAME_ALTERED),  # frame_fragments: one byte of the middle fragment flipped
    ("pingpong", Outcome.CONTROL_FRAME_LOST),  # frame_ping_pong: TC's ping payload not the scripted one
    ("close-1008", Outcome.CLOSE_ALTERED),  # frame_close_codes: 1001 instead of 1008
    ("pipelined", Outcome.PIPELINED_DATA_LOST),  # frame_pipelined: the first message dropped at the TC
])
def test_a_script_the_tc_breaks_is_reported_as_its_fault(deployment: Deployment, scenario: str,
                                                         outcome: Outcome) -> None:
    seen, _ = scripted(deployment, scenario, through_args=("--mangle",))
    assert seen.outcome is outcome, seen


def test_a_line_one_byte_short_is_reported_as_altered(deployment: Deployment) -> None:
    """frame_log_line: the emitter sends 61,439 bytes where the client expects 61,440."""
    through, _ = log_line_attempts(deployment, line_bytes=MAX_LOG_LINE - 1)
    seen = observe(through, "log-line")
    assert seen.outcome is Outcome.FRAME_ALTERED and "61439" in seen.detail, seen


def test_a_handshake_without_the_upgrade_token_is_rejected(deployment: Deployment) -> None:
    """frame_upgrade_casing: ``Connection: keep-alive`` alone (no ``Upgrade`` token), straight to the
    TC -> handshake_rejected (gorilla's 400). Through nginx the same request passes: nginx sets
    ``Connection: upgrade`` itself whenever ``Upgrade`` is present (its documented map)."""
    ev = attempt(deployment, "casing", "--casing", "no-upgrade-token", direct=True)
    seen = observe(ev, "casing")
    assert seen.outcome is Outcome.HANDSHAKE_REJECTED and "400" in seen.detail, seen


def test_a_failing_baseline_is_not_blamed_on_the_lb(deployment: Deployment) -> None:
    """Every frame check: the straight attempt deviates, the LB attempt does not -> baseline_failed."""
    seen, _ = scripted(deployment, "close-1011", direct_args=("--mangle",))
    assert seen.outcome is Outcome.BASELINE_FAILED, seen
