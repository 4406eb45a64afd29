"""A real CF client nobody here wrote: ``cloudfoundry-client`` (PyPI), run from the host as a user
would, through the LB.

It logs in (the OAuth password grant to the UAA stand-in's ``/oauth/token``, as ``cf login`` does),
discovers the endpoints from Cloud Controller's root document, streams an app's logs over the
Traffic Controller WebSocket (``Authorization: Bearer <jwt>``, capital B: Cloud Controller takes any
case), reads recent logs (classic profile) and reads the RLP gateway (current profile). The library
resolves names and trusts CAs the ordinary way, so the test gives it the topology's names (a
resolver entry per name, like ``/etc/hosts``) and the cell's CA (``REQUESTS_CA_BUNDLE``,
``SSL_CERT_FILE``, ``WEBSOCKET_CLIENT_CA_BUNDLE``). It runs in its own process (``cf_client_driver``: the library's dropsonde protobufs cannot share a
descriptor pool with the harness's). It sends no attempt header, so its evidence is
bound by the test's time window (a cell runs one test at a time) and by sequence numbers no other
test emits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from harness.deployment import APP_GUID, Deployment
from harness.outcomes import Observation, Outcome
from harness.profiles import use_profile
from harness.errors import ScenarioError
from harness.protocol.delivery import DeliveryLedger
from harness.timeouts import scaled
from harness.verdicts import classify_stream
from harness.witness import Evidence, within
from tests.scenarios.test_log_readers import fresh_base

pytestmark = [pytest.mark.topology("tcp-same-port", driver="nginx"), pytest.mark.topology("tcp-same-port", driver="haproxy"),
              pytest.mark.topology("tcp-same-port", driver="elb"), pytest.mark.topology("http-only-elb", driver="elb")]
N = 200
ROOT = Path(__file__).resolve().parents[2]
Verdict = Callable[..., None]


@pytest.fixture
def cf_client(deployment: Deployment, tmp_path: Path) -> Callable[..., "subprocess.Popen[str]"]:
    """Starts ``cf_client_driver`` (cloudfoundry-client, logged in as ``dev``) against the cell:
    the topology's names resolve to the LBs' edge addresses, the cell's CA is trusted."""
    ca = tmp_path / "ca.pem"
    ca.write_text(deployment.pki.ca_pem)
    env = {**os.environ, **{var: str(ca) for var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE",
                                                      "WEBSOCKET_CLIENT_CA_BUNDLE")}}
    hosts = {deployment.topology.fqdn(label): deployment.nodes[lb].ip(deployment.networks["edge"])
             for label, lb in deployment.topology.dns.items()}

    def start(command: str, *args: str) -> "subprocess.Popen[str]":
        return subprocess.Popen([sys.executable, "-m", "tests.scenarios.cf_client_driver", command, "--api",
                                 deployment.api_url, "--hosts", json.dumps(hosts), "--app", APP_GUID, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    return start


def outcome_of(proc: "subprocess.Popen[str]", timeout: float) -> dict[str, Any]:
    """The driver's last JSON line (its result, or its login error)."""
    try:
        out, err = proc.communicate(timeout=scaled(timeout))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise ScenarioError(f"cloudfoundry-client driver gave no result (exit {proc.returncode})", err[-2000:])
    return {**lines[0], **lines[-1]} if len(lines) > 1 else lines[0]


def window_evidence(dep: Deployment, started: float, client: dict[str, Any]) -> Evidence:
    """The routers' and the Traffic Controller's records of this test's window (the library sends
    no attempt header; a cell runs one test at a time)."""
    ended = time.time()
    routers: list[dict[str, Any]] = []
    for i in range(dep.topology.router_count):
        code, out = dep.nodes[f"router-{i}"].exec(["curl", "-sf", "http://127.0.0.1:8080/requests"])
        routers += json.loads(out) if code == 0 else []
    code, out = dep.nodes["tc"].exec(["curl", "-sf", "http://127.0.0.1:8088/harness/events"])
    tc = json.loads(out) if code == 0 else []
    return Evidence(f"window-{started:.3f}", started, ended, client, tuple(within(routers, started, ended)),
                    tuple(within(tc, started, ended)))


@pytest.mark.check("third_party_logs")
def test_cloudfoundry_client_streams_logs(deployment: Deployment, cf_client: Any, verdict: Verdict) -> None:
    started, base = time.time(), fresh_base()
    proc = cf_client("logs", "--base", str(base), "--expect", str(N))
    # The library says nothing once its handshake is done: the TC's stream_open in this window does.
    deadline = time.monotonic() + scaled(30)
    while time.monotonic() < deadline and proc.poll() is None and not _tc_opened(deployment, started):
        time.sleep(0.2)
    if proc.poll() is None:
        deployment.emit(N, rate=400, start=base)
    result = outcome_of(proc, 40)
    ledger = DeliveryLedger(N)
    for seq in result.get("seen", []):
        ledger.record(seq)
    result["delivery"] = ledger.summary()
    ev = window_evidence(deployment, started, result)
    seen = (Observation(Outcome.UNEXPECTED_STATUS, f"login failed: {result['login_error']}") if "login_error" in result
            else classify_stream(ev, N))
    verdict("third_party_logs", seen, evidence=ev, delivery=result["delivery"], error=result.get("error"),
            doppler=result.get("doppler"), latency_ms_p50=result.get("latency_ms_p50"),
            library="cloudfoundry-client 1.40.4")


def _tc_opened(dep: Deployment, since: float) -> bool:
    code, out = dep.nodes["tc"].exec(["curl", "-sf", "http://127.0.0.1:8088/harness/events"])
    return code == 0 and any(e["event"] == "stream_open" and e["ts"] >= since for e in json.loads(out))


@pytest.mark.check("third_party_recent_logs")
def test_cloudfoundry_client_reads_recent_logs_classic(deployment: Deployment, cf_client: Any,
                                                       verdict: Verdict) -> None:
    base = fresh_base()
    deployment.emit(20, start=base)
    started = time.time()
    result = outcome_of(cf_client("recent"), 40)
    ev = window_evidence(deployment, started, result)
    got = set(result.get("seqs", [])) & set(range(base, base + 20))
    seen = (Observation(Outcome.UNEXPECTED_STATUS, f"login failed: {result['login_error']}") if "login_error" in result
            else Observation(Outcome.PASS, "20/20") if len(got) == 20
            else Observation(Outcome.INCOMPLETE, f"{len(got)}/20") if result.get("status") == 200
            else Observation(Outcome.UNEXPECTED_STATUS, str(result.get("error"))))
    verdict("third_party_recent_logs", seen, evidence=ev, status=result.get("status"))


@pytest.mark.check("third_party_rlp")
def test_cloudfoundry_client_reads_the_rlp_gateway_current(deployment: Deployment, cf_client: Any,
                                                           verdict: Verdict) -> None:
    """The library's RLP reader sends ``Authorization: <jwt>`` with no scheme. The RLP gateway takes
    that (it trims ``bearer`` only when present) but asks Cloud Controller, which wants a token that
    starts with ``bearer`` (``UaaTokenDecoder#token_format_valid?``): a user is refused (404)."""
    use_profile(deployment, "current")
    started = time.time()
    try:
        result = outcome_of(cf_client("rlp", "--timeout", str(scaled(15))), 40)
    finally:
        use_profile(deployment, "classic")
    # The library yields the body whatever the status: the router's record of /v2/read says which.
    ev = window_evidence(deployment, started, result)
    reads = [r for r in ev.routers if str(r.get("path") or "").startswith("/v2/read")]
    status = reads[-1].get("status") if reads else None
    first = str(result.get("first", ""))
    seen = (Observation(Outcome.UNEXPECTED_STATUS, f"login failed: {result['login_error']}") if "login_error" in result
            else Observation(Outcome.PASS, "first event read") if status == 200 and first.startswith(("data:", "event:"))
            else Observation(Outcome.LOG_READ_DENIED, f"status 404: {first[:120]}") if status == 404
            and "forwarded_headers" in reads[-1]
            else Observation(Outcome.UNEXPECTED_STATUS, f"status {status}: {result.get('error') or first[:120]}"))
    verdict("third_party_rlp", seen, evidence=ev, status=status, first_chunk=first[:200],
            authorization_sent=[h[1][:12] + "..." for r in reads for h in r.get("headers", [])
                                if h[0].lower() == "authorization"])
