"""Negative controls of the current-profile checks (``test_log_readers.py``): each makes its check
report its own specific failure, in a cell the matrix already brings up."""

from __future__ import annotations

import pytest

from harness.deployment import APP_GUID, OTHER_APP_GUID, Deployment
from harness.outcomes import Outcome
from harness.profiles import use_profile
from harness.verdicts import classify_log_reader, classify_recent_current
from harness.witness import Evidence
from tests.scenarios.test_log_readers import fresh_base, gateway_sent

pytestmark = pytest.mark.topology("http-upgrade", driver="haproxy")


def _run(dep: Deployment, command: str, token: str, app: str, n: int, timeout: float = 6) -> Evidence:
    run = dep.client_run(command, "--api", dep.api_url, "--app", app, "--token", token, "--expect", str(n),
                         "--base", str(fresh_base()), "--timeout", str(timeout))
    return dep.evidence(run, run.result(timeout + 30), gateway_sent=gateway_sent(dep, run.attempt))


def test_a_log_cache_walk_nobody_feeds_is_reported_incomplete(deployment: Deployment) -> None:
    """cf_logs_log_cache: lines no emitter sends -> incomplete (the walk kept polling, got 200s)."""
    ev = _run(deployment, "cf-logs", "bearer admin", OTHER_APP_GUID, 10)
    assert ev.client["status"] == 200 and ev.outcome["requests"] > 1
    assert classify_log_reader(ev, 10).outcome is Outcome.INCOMPLETE


def test_a_v2_nozzle_nobody_feeds_is_reported_incomplete(deployment: Deployment) -> None:
    """v2_nozzle: a stream that stays up on heartbeats only -> incomplete, not response_buffered
    (the gateway wrote no envelope for this attempt)."""
    ev = _run(deployment, "v2-nozzle", "bearer admin", OTHER_APP_GUID, 10, timeout=9)
    assert ev.client["status"] == 200 and ev.outcome["events"].get("heartbeat", 0) >= 1
    assert classify_log_reader(ev, 10).outcome is Outcome.INCOMPLETE


def test_log_cache_refuses_a_token_that_cannot_read_the_app(deployment: Deployment) -> None:
    """cf_logs_log_cache: Log Cache's 404 for another user's app, relayed by the router -> log_read_denied
    (after the CLI's five tries)."""
    ev = _run(deployment, "cf-logs", "bearer other", APP_GUID, 10)
    seen = classify_log_reader(ev, 10)
    assert seen.outcome is Outcome.LOG_READ_DENIED, seen
    assert ev.outcome["requests"] == 5


def test_the_classic_traffic_controller_still_serves_recent_logs(deployment: Deployment) -> None:
    """recent_logs_current: the same request to a classic TC -> pass, not recent_logs_gone."""
    use_profile(deployment, "classic")
    run = deployment.client_run("recent", "--api", deployment.api_url, "--app", APP_GUID, "--token", "bearer dev")
    ev = deployment.evidence(run, run.result(30))
    assert classify_recent_current(ev).outcome is Outcome.PASS
    assert not ev.tc_events("recent_logs_removed")
