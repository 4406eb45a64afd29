"""Today's foundation (profile ``current``): one check per kind of log client, in every matrix cell.

The seed's checks (``logs``, ``firehose``, ``recent_logs`` in ``test_matrix.py``) are the classic
profile's and what noaa nozzles still see today. Here the same cell answers for a current
foundation: ``cf logs`` on cf CLI >= 6.50 polls Log Cache over HTTPS, ``cf logs --recent`` reads Log
Cache, v2 nozzles read the RLP gateway's server-sent events, and the Traffic Controller answers 404
to recent logs. Log Cache and the RLP gateway are fed by the same emitter through the same Doppler
as the Traffic Controller, so loss and latency are counted the same way (sequence numbers, emit
timestamps); each attempt's sequence numbers start at a fresh base, so lines earlier tests left in
Log Cache never count.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from typing import Callable, Iterator

import pytest

from harness.deployment import APP_GUID, ClientRun, Deployment
from harness.profiles import use_profile
from harness.timeouts import scaled
from harness.verdicts import classify_log_reader, classify_recent_current
from harness.witness import Evidence

pytestmark = pytest.mark.matrix
N = 400
RATE = 800  # envelopes/s: the CLI's walk reads again at once after a batch, so 0.5 s of logs cross dozens of reads
#: A v2 nozzle ends this long after its last envelope: an LB that buffers the answer holds the tail
#: back for good (nginx kept 41 of 400), so waiting out the 15 s timeout told nothing more.
SETTLE_S = 4
Verdict = Callable[..., None]
_bases = itertools.count(1)


def fresh_base() -> int:
    """First sequence number of one attempt: unique in this run and across runs on one cell."""
    return 10_000_000 * next(_bases) + secrets.randbelow(1_000) * 10_000


@pytest.fixture
def current(deployment: Deployment) -> Iterator[Deployment]:
    """The cell as a current foundation for this test; back to classic afterwards (other checks)."""
    use_profile(deployment, "current")
    try:
        yield deployment
    finally:
        use_profile(deployment, "classic")


def cf_logs(dep: Deployment, token: str, n: int, *, app: str = APP_GUID, timeout: float = 40) -> Evidence:
    """``cf logs`` on CLI >= 6.50: a primer line so the CLI's first read finds a newest envelope,
    then ``n`` lines once it walks."""
    base = fresh_base()
    dep.emit(1, start=base - 1, app=app)
    run = dep.client_run("cf-logs", "--api", dep.api_url, "--app", app, "--token", token, "--expect", str(n),
                         "--base", str(base), "--timeout", str(scaled(timeout)))
    if run.wait_event("walking", 20):
        dep.emit(n, rate=RATE, start=base)
    return dep.evidence(run, run.result(timeout + 30))


def v2_nozzle(dep: Deployment, token: str, n: int, *, app: str = APP_GUID, timeout: float = 15) -> Evidence:
    """A v2 nozzle on the RLP gateway. The emitter starts once the gateway says it subscribed to
    Doppler for this attempt (an LB that buffers the answer holds the nozzle's 200 back, so the
    nozzle cannot tell); the gateway's own count of what it wrote for this attempt goes into the
    evidence."""
    base = fresh_base()
    run = dep.client_run("v2-nozzle", "--api", dep.api_url, "--app", app, "--token", token, "--expect", str(n),
                         "--base", str(base), "--timeout", str(scaled(timeout)), "--settle", str(scaled(SETTLE_S)))
    if run.wait_event("requesting", 20) and _gateway_subscribed(dep, run):
        dep.emit(n, rate=RATE, start=base)
    result = run.result(timeout + 30)
    return dep.evidence(run, result, gateway_sent=gateway_sent(dep, run.attempt))


def _gateway_subscribed(dep: Deployment, run: ClientRun, wait: float = 10) -> bool:
    deadline = time.monotonic() + scaled(wait)
    while time.monotonic() < deadline and run.ended is None:
        if gateway_sent(dep, run.attempt).get("subscribed"):
            return True
        time.sleep(0.2)
    return False


def gateway_sent(dep: Deployment, attempt: str) -> dict[str, object]:
    """What the RLP gateway wrote for ``attempt`` (read inside its container, never through the LB)."""
    code, out = dep.nodes["rlp-gateway"].exec(["curl", "-sf", f"http://127.0.0.1:8088/harness/sent?attempt={attempt}"])
    return dict(json.loads(out)) if code == 0 and out.strip() else {}


@pytest.mark.check("cf_logs_log_cache")
@pytest.mark.waits(4)
def test_cf_logs_log_cache(current: Deployment, verdict: Verdict) -> None:
    ev = cf_logs(current, "bearer dev", N)
    verdict("cf_logs_log_cache", classify_log_reader(ev, N), evidence=ev, endpoint=ev.client["endpoint"],
            delivery=ev.client["delivery"], requests=ev.outcome.get("requests"))


def log_cache_ingested(dep: Deployment) -> int:
    """Envelopes the cell's Log Cache took from Doppler so far (its ``/health``, asked in its node)."""
    taken, _, out = dep.nodes["log-cache"].ask("http://127.0.0.1:8083/health", lambda body: "ingested" in body)
    return int(json.loads(out)["ingested"]) if taken else -1


def wait_ingested(dep: Deployment, at_least: int, wait: float = 10) -> None:
    """Until Log Cache holds ``at_least`` envelopes (at most ``wait`` s; then the read judges what is
    there): it takes them from Doppler's firehose after the emitter is done, and a recent read is one
    GET, as the CLI's is (a read 150 ms after the emit once found 1 of 20: the race, not the LB)."""
    deadline = time.monotonic() + scaled(wait)
    while log_cache_ingested(dep) < at_least and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.check("cf_recent_log_cache")
def test_cf_recent_log_cache(current: Deployment, verdict: Verdict) -> None:
    base, before = fresh_base(), log_cache_ingested(current)
    current.emit(20, start=base)
    wait_ingested(current, before + 20)
    run = current.client_run("cf-recent", "--api", current.api_url, "--app", APP_GUID, "--token", "bearer dev",
                             "--expect", "20", "--base", str(base))
    ev = current.evidence(run, run.result(30))
    verdict("cf_recent_log_cache", classify_log_reader(ev, 20), evidence=ev, endpoint=ev.client["endpoint"],
            delivery=ev.client["delivery"])


@pytest.mark.check("v2_nozzle")
@pytest.mark.waits(4)
def test_v2_nozzle(current: Deployment, verdict: Verdict) -> None:
    ev = v2_nozzle(current, "bearer dev", N)
    verdict("v2_nozzle", classify_log_reader(ev, N), evidence=ev, endpoint=ev.client["endpoint"],
            delivery=ev.client["delivery"], events=ev.outcome.get("events"), gateway_sent=ev.extra["gateway_sent"])


@pytest.mark.check("recent_logs_current")
def test_recent_logs_current(current: Deployment, verdict: Verdict) -> None:
    current.emit(5, start=fresh_base())
    run = current.client_run("recent", "--api", current.api_url, "--app", APP_GUID, "--token", "bearer dev")
    ev = current.evidence(run, run.result(30))
    verdict("recent_logs_current", classify_recent_current(ev), evidence=ev, url=ev.client["url"],
            status=ev.client["status"])
