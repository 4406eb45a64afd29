"""Frame-fidelity judgements on recorded evidence: every fault row, the side-by-side rules (a cell's
handshake outcome wins, a failed baseline is never blamed on the LB) and the script's invariants."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from harness.frame_checks import CHECKS, combine, observe, side_by_side
from harness.outcomes import Observation, Outcome
from harness.protocol.frames import ALPHABET, CLOSE_CODES, MAX_LOG_LINE, SCENARIOS, Script, digest, log_line, pattern
from harness.verdicts import expected
from harness.witness import Evidence

ATTEMPT = "a1b2c3"


def good(scenario: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What a faithful path leaves behind: the client's record and the TC's events."""
    s = Script(scenario, ATTEMPT)
    code, reason = s.close
    frames: list[dict[str, Any]] = []
    if scenario == "fragments":
        f0, f1, f2 = s.server_fragments
        frames = [{"op": "binary", "fin": False, "len": len(f0)}, {"op": "ping", "data": s.server_pings[0].decode()},
                  {"op": "cont", "fin": False, "len": 1}, {"op": "ping", "data": s.server_pings[1].decode()},
                  {"op": "cont", "fin": True, "len": len(f2)}]
    if scenario == "pingpong":
        frames = [{"op": "ping", "data": s.server_pings[0].decode(), "len": 1}]
    record = {"frames": frames, "message": digest(b"".join(s.server_fragments)) if scenario == "fragments" else None,
              "pong": s.client_ping.decode(), "close": {"code": code, "reason": reason},
              "echo": digest(s.pipelined) if scenario == "casing" else None}
    sent = b"".join(s.client_fragments) if scenario == "fragments" else s.pipelined
    tc = [{"event": "frames_received", "first_message": digest(sent)}, {"event": "frames_pongs", "answered": True},
          {"event": "frames_closed", "code": code, "reason": reason}]
    return record, tc


def evidence(record: dict[str, Any], tc: list[dict[str, Any]], **outcome: Any) -> Evidence:
    return Evidence(ATTEMPT, 1.0, 2.0, {"outcome": {"connected": True, **outcome}, "record": record}, (), tuple(tc))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_faithful_path_passes(scenario: str) -> None:
    assert observe(evidence(*good(scenario)), scenario).outcome is Outcome.PASS


def _changed(scenario: str, where: str, **change: Any) -> Evidence:
    record, tc = good(scenario)
    if where == "client":
        record.update(change)
    else:
        tc = [{**e, **change} if e["event"] == where else e for e in tc]
    return evidence(record, tc)


CASES = [
    ("fragment byte changed", "fragments", _changed("fragments", "client", message="0" * 16), Outcome.FRAME_ALTERED),
    ("client message changed", "fragments", _changed("fragments", "frames_received", first_message="x"),
     Outcome.FRAME_ALTERED),
    ("interleaved ping lost", "fragments", _changed("fragments", "client", frames=[]), Outcome.CONTROL_FRAME_LOST),
    ("client ping unanswered", "pingpong", _changed("pingpong", "client", pong=None), Outcome.CONTROL_FRAME_LOST),
    ("TC ping unanswered", "pingpong", _changed("pingpong", "frames_pongs", answered=False),
     Outcome.CONTROL_FRAME_LOST),
    ("close code changed", "close-1008", _changed("close-1008", "client", close={"code": 1001, "reason": "x"}),
     Outcome.CLOSE_ALTERED),
    ("close echo changed", "close-1011", _changed("close-1011", "frames_closed", code=1000), Outcome.CLOSE_ALTERED),
    ("pipelined data lost", "pipelined", _changed("pipelined", "frames_received", first_message=None),
     Outcome.PIPELINED_DATA_LOST),
    ("echo changed", "casing", _changed("casing", "client", echo=None), Outcome.FRAME_ALTERED),
    ("log line short", "log-line", evidence({"line_bytes": MAX_LOG_LINE - 1, "line_ok": False}, []),
     Outcome.FRAME_ALTERED),
    ("log line never came", "log-line", evidence({"line_bytes": None, "line_ok": False}, []), Outcome.FRAME_ALTERED),
    ("Upgrade stripped", "pingpong", Evidence(ATTEMPT, 1.0, 2.0, {"outcome": {
        "connected": False, "error_kind": "handshake_status", "handshake_status": 400}, "record": {}},
        ({"path": "/harness/frames/pingpong", "upgrade": False, "status": 400, "ts": 1.5},),
        ({"event": "handshake_rejected", "ts": 1.5},)), Outcome.UPGRADE_STRIPPED),
]


@pytest.mark.parametrize("case, scenario, ev, outcome", CASES, ids=[c[0] for c in CASES])
def test_each_fault_is_reported_as_its_own_outcome(case: str, scenario: str, ev: Evidence, outcome: Outcome) -> None:
    assert observe(ev, scenario).outcome is outcome


PASS, ALTERED = Observation(Outcome.PASS, "ok"), Observation(Outcome.FRAME_ALTERED, "x")


def test_side_by_side_blames_the_lb_only_over_a_good_baseline() -> None:
    stripped = Observation(Outcome.UPGRADE_STRIPPED, "status 400")
    assert side_by_side(stripped, ALTERED) == stripped  # the cell's own predicted outcome wins
    assert side_by_side(ALTERED, ALTERED).outcome is Outcome.BASELINE_FAILED
    assert side_by_side(PASS, ALTERED).outcome is Outcome.BASELINE_FAILED
    assert side_by_side(ALTERED, PASS).outcome is Outcome.FRAME_ALTERED
    assert side_by_side(PASS, PASS).outcome is Outcome.PASS
    assert combine([PASS, ALTERED, PASS]) == ALTERED


def test_the_pattern_is_the_sha256_chain_mapped_letter_by_letter() -> None:
    """The definition, written the slow way: each block of the chain, each byte to its letter."""
    expected, block = bytearray(), hashlib.sha256(b"seed").digest()
    while len(expected) < 1000:
        block = hashlib.sha256(block).digest()
        expected += bytes(ALPHABET[b % len(ALPHABET)] for b in block)
    assert [pattern("seed", n) for n in (0, 1, 31, 32, 33, 1000)] == [bytes(expected[:n]) for n in (0, 1, 31, 32, 33, 1000)]


def test_the_script_holds_the_facts_it_tests() -> None:
    assert len(log_line(7)) == MAX_LOG_LINE and log_line(7).startswith(b"seq=7 ")
    assert pattern("a", 100) != pattern("b", 100) and pattern("a", 100)[:50] == pattern("a", 50)
    assert [Script(f"close-{c}", ATTEMPT).close[0] for c in CLOSE_CODES] == [1000, 1008, 1011]
    assert all(len(p) <= 125 for p in Script("fragments", "z" * 200).server_pings)  # RFC 6455 5.5
    assert len(Script("close-1000", "z" * 40).close[1].encode()) <= 123


def test_every_frame_check_has_a_prediction() -> None:
    from harness import drivers, topology

    drv, topo = drivers.load_all(), topology.load_all()["http-upgrade"].with_driver("nginx")
    out = expected(topo, drv)
    assert {out[c].outcome for c in CHECKS} == {Outcome.PASS}
    stripped = expected(topology.load_all()["http-only-elb"].with_driver("elb"), drv)
    assert {stripped[c].outcome for c in CHECKS} == {Outcome.UPGRADE_STRIPPED}
