"""Frame fidelity through every LB (HAProxy's websocket.vtc, nginx-tests' proxy_websocket.t and
Autobahn's assertions, on the CF path), each scenario measured through the LB and straight to the
Traffic Controller side by side (``harness.frame_checks``).

Through the LB the client dials what ``/v2/info`` advertises, as ``cf logs`` does; the straight
attempt runs in the app container and dials ``tc:8088`` (the TC's plain listener; 8081 is TLS).
Each attempt has its own id, and each is
judged from its own evidence: the client's record of every frame it got and the TC's events.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import pytest

from harness.deployment import APP_GUID, ClientRun, Deployment
from harness.frame_checks import CHECKS, combine, observe, side_by_side
from harness.outcomes import Observation
from harness.protocol.frames import MAX_LOG_LINE
from harness.witness import Evidence

pytestmark = pytest.mark.matrix
Verdict = Callable[..., None]
DIRECT = "ws://tc:8088"  # the Traffic Controller's plain listener (8081 is TLS, for the routers)


def frames_run(dep: Deployment, scenario: str, *args: str, direct: bool = False) -> ClientRun:
    """One scenario's client: through the LB (discovery as the CLI does it) or straight to the TC."""
    args = ("--scenario", scenario, *(("--casing", "odd") if scenario == "casing" else ()), *args)
    if not direct:
        return dep.client_run("frames", "--api", dep.api_url, *args)
    return dep.nodes["app"].client_run(["python3", "-m", "harness.cf", "frames", "--endpoint", DIRECT, *args])


def attempt(dep: Deployment, scenario: str, *args: str, direct: bool = False) -> Evidence:
    run = frames_run(dep, scenario, *args, direct=direct)
    return dep.evidence(run, run.result(60))


def scripted(dep: Deployment, scenario: str, *, through_args: tuple[str, ...] = (),
             direct_args: tuple[str, ...] = ()) -> tuple[Observation, dict[str, object]]:
    """A TC-side script straight to the TC, then through the LB (``--mangle`` in either's args: that
    attempt asks the TC to deviate from the script, a negative control)."""
    direct = attempt(dep, scenario, *direct_args, direct=True)
    through = attempt(dep, scenario, *through_args)
    seen = side_by_side(observe(through, scenario), observe(direct, scenario))
    return seen, {"attempt_through_lb": through.attempt, "attempt_direct": direct.attempt,
                  "frames_through_lb": (through.client.get("record") or {}).get("frames")}


def log_line_attempts(dep: Deployment, *, line_bytes: int = MAX_LOG_LINE) -> tuple[Evidence, Evidence]:
    """Two consumers of the app's stream (through the LB, direct); one line of ``line_bytes`` bytes
    emitted once both are up. Each waits for that line's sequence number and compares it with
    ``harness.protocol.frames.log_line`` (``line_bytes`` != 61,440: the control, a truncated line).
    Returns (through the LB, direct)."""
    seq = 700_000 + secrets.randbelow(100_000)
    stream = ("--app", APP_GUID, "--token", "bearer dev", "--seq", str(seq))
    direct, through = frames_run(dep, "log-line", *stream, direct=True), frames_run(dep, "log-line", *stream)
    direct.wait_event("connected", 15)
    through.wait_event("connected", 15)
    dep.emit(1, start=seq, line_bytes=line_bytes)
    return dep.evidence(through, through.result(60)), dep.evidence(direct, direct.result(60))


def log_line(dep: Deployment) -> tuple[Observation, dict[str, object]]:
    ev_through, ev_direct = log_line_attempts(dep)
    seen = side_by_side(observe(ev_through, "log-line"), observe(ev_direct, "log-line"))
    return seen, {"attempt_through_lb": ev_through.attempt, "attempt_direct": ev_direct.attempt,
                  "line_through_lb": ev_through.client.get("record", {}).get("line_bytes")}


@pytest.mark.check("frame_log_line")
def test_largest_log_line_arrives_intact(deployment: Deployment, verdict: Verdict) -> None:
    seen, facts = log_line(deployment)
    verdict("frame_log_line", seen, **facts)


def all_scripted(dep: Deployment) -> dict[str, tuple[Observation, dict[str, object]] | BaseException]:
    """Every TC-side scenario of the cell, direct and through the LB, all at once (each attempt has
    its own id and its own evidence; they only wait on sockets), once per cell: the frame checks
    share these attempts instead of running them one after another. A scenario that crashed keeps
    its exception, raised only by the checks that use it."""
    cache = getattr(dep, "_frames_scripted", None)
    if cache is not None:
        return cache  # type: ignore[no-any-return]
    scenarios = [sc for check, names in CHECKS.items() if check != "frame_log_line" for sc in names]

    def judged(scenario: str) -> tuple[Observation, dict[str, object]]:
        direct_run, through_run = frames_run(dep, scenario, direct=True), frames_run(dep, scenario)
        direct = dep.evidence(direct_run, direct_run.result(60))
        through = dep.evidence(through_run, through_run.result(60))
        seen = side_by_side(observe(through, scenario), observe(direct, scenario))
        return seen, {"attempt_through_lb": through.attempt, "attempt_direct": direct.attempt,
                      "frames_through_lb": (through.client.get("record") or {}).get("frames")}

    cache = {}
    with ThreadPoolExecutor(max_workers=len(scenarios)) as pool:
        futures = {sc: pool.submit(judged, sc) for sc in scenarios}
    for sc, future in futures.items():
        cache[sc] = future.exception() or future.result()
    setattr(dep, "_frames_scripted", cache)
    return cache


@pytest.mark.parametrize("check", [c for c in CHECKS if c != "frame_log_line"])
def test_frames_cross_unchanged(deployment: Deployment, verdict: Verdict, check: str) -> None:
    results = all_scripted(deployment)
    runs = []
    for scenario in CHECKS[check]:
        result = results[scenario]
        if isinstance(result, BaseException):
            raise result
        runs.append(result)
    verdict(check, combine([seen for seen, _ in runs]), runs=[facts for _, facts in runs])
