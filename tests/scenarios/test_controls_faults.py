"""Negative controls for the fault, failover and idle checks: each makes its check's classification
report its own specific failure, in a cell the checks already bring up (so no extra cell starts),
running the same attempt as the check with one thing broken on purpose.

| check | control | outcome it must report |
|---|---|---|
| router_death | the router dies under a client that never re-dials (``--retries 0``) | not_recovered |
| fault_reset_gap | reset_peer on the LB's other port, not the stream's: the stream never breaks | fault_not_seen |
| fault_latency | latency on the upstream direction only (envelopes flow downstream) | impairment_not_applied |
| fault_latency | latency downstream with toxicity 0 (applies to no connection) | impairment_not_applied |
| idle | in the cell the LB must cut, the client ends the stream before the LB's idle timeout | pass (not idle_cut) |
"""

from __future__ import annotations

import pytest

from harness.deployment import Deployment
from harness.outcomes import Outcome
from harness.verdicts import classify_idle, classify_router_death, classify_redial
from tests.scenarios.test_faults import link_proxy, observe_latency, reset_attempt, stream_attempt, undelayed_p50
from tests.scenarios.test_idle_timeout import LB_IDLE, LONG_PINGS, idle_attempt
from tests.scenarios.test_router_failover import RATE, router_death_attempt

FAULT_CELL = pytest.mark.topology("http-upgrade", faults=["client-lb"], driver="nginx")


@pytest.mark.topology("http-upgrade", driver="nginx")
def test_router_death_without_redial_is_reported_not_recovered(deployment: Deployment) -> None:
    """router_death: the client sees the break but gives up -> not_recovered (the old check, where
    unique + lost == N always held, passed this)."""
    n = int(3 * RATE)  # 3 s of stream; the router dies 1 s in
    death = router_death_attempt(deployment, n=n, retries=0, kill_after=1, timeout=10)
    seen = classify_router_death(death.evidence, n, death.victim, death.killed_at)
    assert seen.outcome is Outcome.NOT_RECOVERED, seen
    assert len(death.evidence.outcome["breaks"]) == 1 and not death.survivors


@FAULT_CELL
def test_reset_on_another_port_is_reported_not_seen(deployment: Deployment) -> None:
    """fault_reset_gap: the reset_peer toxic goes on the LB's port 80 proxy while the stream runs on
    the logger port -> the stream never breaks -> fault_not_seen."""
    stream_port = deployment.topology.logger_port
    other = next(p for p in deployment.fault_proxy("client-lb") if not p.name.endswith(f"-{stream_port}"))
    try:
        n = 1000  # 2 s at the scenario's rate
        ev = reset_attempt(deployment, other, n, wait_break=1)
    finally:
        other.reset()
    seen = classify_redial(ev, n)
    assert seen.outcome is Outcome.FAULT_NOT_SEEN, seen
    assert ev.client["delivery"]["unique"] == n  # the stream itself was whole: only the fault missed it


@FAULT_CELL
@pytest.mark.parametrize("toxic", [
    pytest.param({"stream": "upstream"}, id="upstream-only"),
    pytest.param({"stream": "downstream", "toxicity": 0.0}, id="toxicity-0"),
])
def test_latency_that_misses_the_envelopes_is_reported_not_applied(deployment: Deployment,
                                                                   toxic: dict[str, object]) -> None:
    """fault_latency: the check's 150 ms toxic, but on the direction envelopes do not take, or with
    toxicity 0 -> the stream is whole but undelayed -> impairment_not_applied (not pass)."""
    proxy = link_proxy(deployment, deployment.topology.logger_port)
    baseline = undelayed_p50(deployment)
    try:
        proxy.add_toxic(type="latency", attributes={"latency": 150, "jitter": 50}, **toxic)
        ev = stream_attempt(deployment, 300, rate=300)
    finally:
        proxy.reset()
    seen = observe_latency(ev, 300, baseline_ms=baseline)
    assert seen.outcome is Outcome.IMPAIRMENT_NOT_APPLIED, seen


@pytest.mark.topology("http-upgrade", driver="nginx", tc=LONG_PINGS, lb_idle=LB_IDLE)
def test_stream_the_client_ends_early_is_not_an_idle_cut(deployment: Deployment) -> None:
    """idle: in the cell where the LB must cut (pings every 30 s, LB idle 4 s), a client that ends the
    stream itself after 1 s -> pass, not idle_cut: the cut is judged from who closed, not assumed."""
    ev = idle_attempt(deployment, hold=1)
    seen = classify_idle(ev)
    assert seen.outcome is Outcome.PASS, seen
    assert ev.tc_closed_by() == "client"
