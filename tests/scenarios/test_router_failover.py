"""A router dies mid-stream: the client re-dials through the LB and lands on the other router.

The gap is measured in sequence numbers (emitted at a fixed rate, so numbers are milliseconds).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import pytest

from harness.deployment import APP_GUID, Deployment
from harness.verdicts import PASS

pytestmark = [pytest.mark.topology(name) for name in ("http-upgrade", "tcp-same-port")]
RATE = 200.0  # envelopes per second: one envelope = 5 ms of stream
N = 3000


def _serving_router(deployment: Deployment) -> str | None:
    """Which router carries the live stream (its request log shows the 101)."""
    upgrades = [r for r in deployment.router_requests()
                if r["path"] == f"/apps/{APP_GUID}/stream" and r.get("status") == 101]
    return upgrades[-1]["router"] if upgrades else None


def test_router_death_mid_stream_is_survived_by_redialling(deployment: Deployment,
                                                           verdict: Callable[..., None]) -> None:
    run = deployment.stream_logs("dev", N, timeout=45, extra=("--retries", "10", "--settle", "4"))
    assert run.wait_event("connected", 20), run.raw
    emitter = threading.Thread(target=deployment.emit, args=(N,), kwargs={"rate": RATE}, daemon=True)
    emitter.start()
    time.sleep(2)
    victim = _serving_router(deployment)
    assert victim, "no router logged the stream's 101"
    node = deployment.nodes[victim].docker
    node.kill()
    try:
        emitter.join(40)
        result = run.result(60)
    finally:
        node.start()  # the cell is reused by other tests: bring the router back
    delivery, breaks = result["delivery"], result["outcome"]["breaks"]
    survivor = _serving_router(deployment)
    if not breaks:
        observed = "break not seen"
    elif survivor == victim or survivor is None:
        observed = f"did not move to another router (now {survivor})"
    elif len(delivery["lost_ranges"]) > 1 or delivery["unique"] + delivery["lost"] != N:
        observed = f"unexpected loss pattern {delivery['lost_ranges']}"
    else:
        observed = PASS
    verdict("router_death", observed, killed=victim, survivor=survivor, gap=delivery["lost_ranges"],
            gap_ms=delivery["lost"] * 1000 / RATE, redials=len(breaks))
