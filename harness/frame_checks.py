"""Frame fidelity as matrix checks: each scenario measured through the LB and straight to the
Traffic Controller (no LB, no router), side by side, and judged from one attempt's evidence each.

The straight attempt is the baseline: if the stand-ins cannot carry a scenario on their own, the
verdict is ``baseline_failed``, never a fault blamed on the LB. Pure: unit-tested on recorded
evidence (``tests/unit/test_frame_checks.py``).
"""

from __future__ import annotations

from harness.outcomes import Observation, Outcome
from harness.protocol.frames import MAX_LOG_LINE, Script, judge
from harness.verdicts import classify_handshake
from harness.witness import Evidence

#: check id -> the scenario(s) it plays (``harness.protocol.frames.SCENARIOS``, or ``log-line``).
CHECKS: dict[str, tuple[str, ...]] = {
    "frame_log_line": ("log-line",),
    "frame_fragments": ("fragments",),
    "frame_ping_pong": ("pingpong",),
    "frame_close_codes": ("close-1000", "close-1008", "close-1011"),
    "frame_pipelined": ("pipelined",),
    "frame_upgrade_casing": ("casing",),
}
#: ``harness.protocol.frames.Judgement.fault`` -> the outcome it is reported as.
FAULTS = {"message": Outcome.FRAME_ALTERED, "control": Outcome.CONTROL_FRAME_LOST, "close": Outcome.CLOSE_ALTERED,
          "pipelined": Outcome.PIPELINED_DATA_LOST}


def observe(ev: Evidence, scenario: str) -> Observation:
    """One attempt of one scenario: its handshake, then what crossed against the script."""
    if failed := classify_handshake(ev):
        return failed
    record = dict(ev.client.get("record") or {})
    if scenario == "log-line":
        size = record.get("line_bytes")
        if record.get("line_ok"):
            return Observation(Outcome.PASS, f"{size}-byte line intact")
        return Observation(Outcome.FRAME_ALTERED, f"line of {size} bytes arrived, {MAX_LOG_LINE} sent"
                           if size is not None else "the line never arrived")
    verdict = judge(Script(scenario, ev.attempt), record, list(ev.tc))
    if verdict.fault:
        return Observation(FAULTS[verdict.fault], f"{scenario}: {verdict.detail}")
    return Observation(Outcome.PASS, f"{scenario}: {verdict.detail}")


def side_by_side(through: Observation, direct: Observation) -> Observation:
    """The verdict of one scenario: a handshake that failed through the LB is the cell's own
    outcome (what the matrix predicts there); a baseline that failed makes the rest moot."""
    if through.outcome is not Outcome.PASS and through.outcome not in FAULTS.values():
        return through
    if direct.outcome is not Outcome.PASS:
        return Observation(Outcome.BASELINE_FAILED, f"direct: {direct}; through the LB: {through}")
    return Observation(through.outcome, f"through the LB: {through.detail} | direct: {direct.detail}")


def combine(verdicts: list[Observation]) -> Observation:
    """Several scenarios of one check (the close codes): the first that did not pass, else all passed."""
    failed = [v for v in verdicts if v.outcome is not Outcome.PASS]
    if failed:
        return failed[0]
    return Observation(Outcome.PASS, " || ".join(v.detail for v in verdicts))
