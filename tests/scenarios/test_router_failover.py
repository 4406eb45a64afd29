"""A router dies mid-stream: the client re-dials through the LB and lands on the other router.

The gap is measured in sequence numbers (emitted at a fixed rate, so numbers are milliseconds).
The verdict rests on one attempt: the victim is the router whose record of this attempt answered
101 before the kill, and the survivor is the router that answered this attempt's re-dial with 101
after it. The negative control (a client that never re-dials) is in ``test_controls_faults.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import pytest

from harness.background import Background
from harness.deployment import ClientRun, Deployment
from harness.timeline_chart import details as timeline_details
from harness.verdicts import classify_router_death
from harness.witness import Evidence

pytestmark = [pytest.mark.topology(name) for name in ("http-upgrade", "tcp-same-port")]
RATE = 200.0  # envelopes per second: one envelope = 5 ms of stream
N = 3000


@dataclass(frozen=True)
class RouterDeath:
    """One attempt whose router was killed under it."""

    evidence: Evidence
    victim: str
    killed_at: float  # time.time() just before the kill

    @property
    def survivors(self) -> list[str]:
        """Routers that answered this attempt's handshake with 101 after the kill."""
        return [str(r["router"]) for r in self.evidence.upgrades() if float(r["ts"]) > self.killed_at]


def serving_router(deployment: Deployment, run: ClientRun) -> str | None:
    """The router carrying ``run``'s stream: its record of this attempt answered 101."""
    upgrades = [r for r in deployment.witness.router_records(run.attempt, run.started, time.time())
                if r.get("status") == 101]
    return str(upgrades[-1]["router"]) if upgrades else None


def router_death_attempt(deployment: Deployment, *, n: int = N, retries: int = 10, kill_after: float = 2,
                         timeout: float = 45) -> RouterDeath:
    """Stream ``n`` envelopes at RATE, kill the router carrying the stream ``kill_after`` s in, and
    gather the attempt's evidence once the client is done. The victim is started again afterwards
    (the cell is reused); its records die with it, so only the survivor's records remain."""
    run = deployment.stream_logs("dev", n, timeout=timeout, extra=("--retries", str(retries), "--settle", "4"))
    assert run.wait_event("connected", 20), run.raw
    emitter = Background(deployment.emit, n, rate=RATE)
    time.sleep(kill_after)
    victim = serving_router(deployment, run)
    assert victim, f"no router recorded a 101 for attempt {run.attempt}"
    node = deployment.nodes[victim]
    killed_at = time.time()
    node.kill()
    try:
        emitter.join(n / RATE + 25)
        ev = deployment.evidence(run, run.result(timeout + 15))
    finally:
        node.start()  # the cell is reused by other tests: bring the router back, listening
        assert node.listening_now(timeout=15), f"{victim} did not listen again after its start"
    return RouterDeath(ev, victim, killed_at)


@pytest.mark.check("router_death")
@pytest.mark.waits(20)
def test_router_death_mid_stream_is_survived_by_redialling(deployment: Deployment,
                                                           verdict: Callable[..., None]) -> None:
    death = router_death_attempt(deployment)
    ev = death.evidence
    delivery, breaks = ev.client["delivery"], ev.outcome.get("breaks") or []
    verdict("router_death", classify_router_death(ev, N, death.victim, death.killed_at), evidence=ev,
            killed=death.victim, survivor=death.survivors[0] if death.survivors else None,
            gap=delivery["lost_ranges"], gap_ms=delivery["lost"] * 1000 / RATE, redials=len(breaks),
            **timeline_details(ev.client))
