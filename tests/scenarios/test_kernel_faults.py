"""Kernel-level impairments in a node's network namespace (iptables, tc, cgroup freezer).

The Traffic Controller's keepalive is shortened (ping every 1 s, 4 s for a pong) so a silent drop is
noticed within the test's bound. Where the kernel lacks a feature (netem here) only that case skips,
and says which feature.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import pytest

from harness.deployment import Deployment
from harness.impair import Impairments, KernelFeatureMissing, netem_missing
from harness.verdicts import PASS, classify_stream

FAST = {"TC_KEEPALIVE_INTERVAL": "1", "TC_KEEPALIVE_TIMEOUT": "4"}
pytestmark = [pytest.mark.topology(name, tc=FAST) for name in ("http-upgrade", "tcp-same-port")]
Verdict = Callable[..., None]


def _port(dep: Deployment) -> int:
    return dep.topology.logger_port


def _stream_with(dep: Deployment, n: int, rate: float, during: Callable[[], Any], *, size: int = 0,
                 timeout: float = 40, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    run = dep.stream_logs("dev", n, timeout=timeout, extra=extra)
    assert run.wait_event("connected", 20), run.raw
    emitter = threading.Thread(target=dep.emit, args=(n,), kwargs={"rate": rate, "size": size}, daemon=True)
    emitter.start()
    during()
    emitter.join(timeout)
    return run.result(timeout + 30)


def test_random_packet_loss_is_absorbed_by_tcp(deployment: Deployment, verdict: Verdict) -> None:
    imp = Impairments(deployment)
    with imp.loss("client", _port(deployment), 0.1):
        result = _stream_with(deployment, 500, 250, lambda: None)
    verdict("kernel_loss", classify_stream(result["outcome"], result["delivery"], 500, True),
            p99_ms=result["delivery"]["latency_ms_p99"])


def _keepalive_timeouts(dep: Deployment) -> int:
    return dep.nodes["tc"].logs().count('"event": "keepalive_timeout"')


def _silent_cut(dep: Deployment, cut: Callable[[], Any]) -> tuple[str, dict[str, Any]]:
    """Hold an idle stream, apply ``cut`` (a context manager factory) until TC's keepalive fires
    (at most 10 s), and say whether only the keepalive noticed."""
    before = _keepalive_timeouts(dep)
    run = dep.stream_logs("dev", 0, timeout=14)
    assert run.wait_event("connected", 20), run.raw
    with cut():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _keepalive_timeouts(dep) == before:
            time.sleep(0.5)
    result = run.result(40)
    fired = _keepalive_timeouts(dep) > before
    return ("keepalive_1008" if fired else f"not noticed: {result['outcome']}"), result["outcome"]


def test_silent_blackhole_is_noticed_only_by_the_keepalive(deployment: Deployment, verdict: Verdict) -> None:
    observed, outcome = _silent_cut(deployment, lambda: Impairments(deployment).blackhole("client", _port(deployment)))
    verdict("kernel_blackhole", observed, client_outcome=outcome)


def test_tcp_reset_from_the_lb_kernel_cuts_the_stream(deployment: Deployment, verdict: Verdict) -> None:
    run = deployment.stream_logs("dev", 0, timeout=15)
    assert run.wait_event("connected", 20), run.raw
    with Impairments(deployment).tcp_reset(deployment.topology.dns["doppler"], _port(deployment)):
        result = run.result(40)
    verdict("kernel_reset", classify_stream(result["outcome"], {"unique": 0, "lost": 1}, 1, True),
            outcome=result["outcome"])


def test_bandwidth_cap_is_enforced_and_the_stream_survives_it(deployment: Deployment, verdict: Verdict) -> None:
    """An unthrottled emitter behind a capped link: the stream stays up at the capped rate, and
    Loggregator's drop-oldest buffers (Doppler, TC: 1000 envelopes each) shed what does not fit.
    The loss is reported, not failed: it is the platform's designed behaviour."""
    n, size, kbit = 1500, 1000, 4000
    with Impairments(deployment).bandwidth(deployment.topology.dns["doppler"], kbit, device="eth1"):
        result = _stream_with(deployment, n, 0, lambda: None, size=size, timeout=60, extra=("--settle", "3"))
    delivery, outcome = result["delivery"], result["outcome"]
    span = delivery["receive_span_s"] or 0
    kbit_seen = round(delivery["unique"] * size * 8 / 1000 / span) if span else None
    if not outcome["connected"] or outcome["closed_by"] != "client":
        observed = classify_stream(outcome, delivery, n, True)
    elif kbit_seen is None or kbit_seen > kbit * 1.3:
        observed = f"cap not effective: {kbit_seen} kbit/s"
    else:
        observed = PASS
    verdict("kernel_bandwidth", observed, cap_kbit=kbit, measured_kbit=kbit_seen, lost=delivery["lost"])


def test_paused_lb_stalls_then_delivers_everything(deployment: Deployment, verdict: Verdict) -> None:
    imp = Impairments(deployment)

    def pause() -> None:
        time.sleep(1)
        with imp.pause(deployment.topology.dns["doppler"]):
            time.sleep(2)

    result = _stream_with(deployment, 1000, 200, pause)
    verdict("kernel_pause", classify_stream(result["outcome"], result["delivery"], 1000, True),
            p99_ms=result["delivery"]["latency_ms_p99"])


def test_partitioned_router_is_noticed_only_by_the_keepalive(deployment: Deployment, verdict: Verdict) -> None:
    """The serving router loses its network (LB side and TC side at once): nothing is reset."""
    victim: list[str] = []

    def cut() -> Any:
        upgrades = [r for r in deployment.router_requests() if r.get("status") == 101]
        victim.append(upgrades[-1]["router"])
        return Impairments(deployment).partition(victim[-1])

    observed, outcome = _silent_cut(deployment, cut)
    verdict("kernel_partition", observed, partitioned=victim[-1], client_outcome=outcome)


def test_netem_delay_where_the_kernel_has_it(deployment: Deployment, verdict: Verdict) -> None:
    if reason := netem_missing(deployment):
        pytest.skip(reason)
    try:
        with Impairments(deployment).delay("client", 100, 20):
            result = _stream_with(deployment, 300, 300, lambda: None)
    except KernelFeatureMissing as exc:
        pytest.skip(str(exc))
    verdict("kernel_delay", classify_stream(result["outcome"], result["delivery"], 300, True))
