"""Faults on the client<->LB link, injected through the Toxiproxy API (toxiproxy-python).

Each scenario runs on every LB under test, in HTTP mode (http-upgrade) and TCP mode
(tcp-same-port), has a bound, and records its outcome for the report's fault matrix. Every verdict
rests on one client run's evidence (``harness.witness``) and is classified by a table in
``harness.verdicts``; a fault that did not take effect is reported as such
(``impairment_not_applied``, ``fault_not_seen``), never as a pass. The negative controls of these
checks are in ``test_controls_faults.py`` and reuse the attempts defined here.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from harness.background import Background
from harness.deployment import BoundProxy, Deployment
from harness.fault_links import links_crossed
from harness.timeline_chart import details as timeline_details
from harness.outcomes import Observation
from harness.verdicts import classify_impaired_stream, classify_redial, classify_stream
from harness.witness import Evidence

Verdict = Callable[..., None]
pytestmark = [pytest.mark.topology(name, faults=["client-lb"]) for name in ("http-upgrade", "tcp-same-port")]

#: The latency toxic of ``fault_latency`` is 150 ± 50 ms downstream: a median below this was not delayed.
LATENCY_FLOOR_MS = 100.0
#: ``fault_all_links``: 20 ms downstream on each of the four links adds 80 ms; three links add 60 ms
#: plus the path's own few ms, so a median above this needs all four.
ALL_LINKS_FLOOR_MS = 75.0
RESET_RATE = 500.0  # envelopes per second in the reset scenario: one envelope = 2 ms of stream


def link_proxy(deployment: Deployment, port: int) -> BoundProxy:
    """The client<->LB fault proxy in front of the LB's ``port``."""
    return next(p for p in deployment.fault_proxy("client-lb") if p.name.endswith(f"-{port}"))


@pytest.fixture
def logger_link(deployment: Deployment) -> Iterator[Any]:
    """The fault proxy in front of the LB's WebSocket port; its toxics are removed afterwards."""
    proxy = link_proxy(deployment, deployment.topology.logger_port)
    yield proxy
    proxy.reset()


def _emit_in_background(deployment: Deployment, count: int, rate: float) -> Background:
    return Background(deployment.emit, count, rate=rate)


def stream_attempt(deployment: Deployment, n: int, *, rate: float = 0, timeout: float = 60,
                   extra: tuple[str, ...] = ()) -> Evidence:
    """One log stream fed ``n`` envelopes at ``rate`` once it is connected: that attempt's evidence."""
    run = deployment.stream_logs("dev", n, timeout=timeout, extra=extra)
    if run.wait_event("connected", 20):
        deployment.emit(n, rate=rate)
    return deployment.evidence(run, run.result(timeout + 30))


def undelayed_p50(deployment: Deployment) -> float:
    """The median latency of the same stream with no toxic, just before the delayed one: the delay
    is judged against it (an absolute floor read a busy machine's own queueing as the delay:
    seen, a control reported 'pass' at load 20 with the toxic on the wrong direction)."""
    ev = stream_attempt(deployment, 300, rate=300)
    return float((ev.client.get("delivery") or {}).get("latency_ms_p50") or 0.0)


def latency_not_applied(ev: Evidence, floor_ms: float, baseline_ms: float = 0.0) -> str | None:
    """Why the delay did not show (median latency at most ``floor_ms`` over ``baseline_ms``), or
    None when it did or when nothing arrived to be timed (the stream's own classification then says
    what went wrong)."""
    p50 = (ev.client.get("delivery") or {}).get("latency_ms_p50")
    if p50 is None or p50 - baseline_ms > floor_ms:
        return None
    return (f"p50 {p50:.0f} ms, {p50 - baseline_ms:.0f} ms over the undelayed stream's {baseline_ms:.0f} ms "
            f"(<= {floor_ms:g} ms): the delay did not reach the stream")


def observe_latency(ev: Evidence, n: int, floor_ms: float = LATENCY_FLOOR_MS, baseline_ms: float = 0.0) -> Observation:
    """``fault_latency``: the delayed stream is complete and in order, and it really was delayed."""
    return classify_impaired_stream(ev, n, latency_not_applied(ev, floor_ms, baseline_ms))


@pytest.mark.check("fault_latency")
@pytest.mark.waits(10)
def test_latency_and_jitter_keep_the_stream_complete_and_ordered(deployment: Deployment, logger_link: Any,
                                                                 verdict: Verdict) -> None:
    baseline = undelayed_p50(deployment)
    logger_link.add_toxic(type="latency", stream="downstream", attributes={"latency": 150, "jitter": 50})
    ev = stream_attempt(deployment, 300, rate=300)
    delivery = ev.client["delivery"]
    verdict("fault_latency", observe_latency(ev, 300, baseline_ms=baseline), evidence=ev,
            p50_ms=delivery["latency_ms_p50"], undelayed_p50_ms=baseline, p99_ms=delivery["latency_ms_p99"],
            out_of_order=delivery["out_of_order"])


@pytest.mark.check("fault_slicer")
def test_slicer_on_handshake_and_frames_still_works(deployment: Deployment, logger_link: Any,
                                                     verdict: Verdict) -> None:
    logger_link.add_toxic(type="slicer", stream="upstream", attributes={"average_size": 4, "size_variation": 2,
                                                                         "delay": 500})
    logger_link.add_toxic(type="slicer", stream="downstream", attributes={"average_size": 32, "size_variation": 16,
                                                                           "delay": 50})
    ev = stream_attempt(deployment, 300, rate=500)
    verdict("fault_slicer", classify_stream(ev, 300), evidence=ev, delivery=ev.client["delivery"])


def reset_attempt(deployment: Deployment, reset: BoundProxy, n: int, *, wait_break: float = 10) -> Evidence:
    """A stream fed ``n`` envelopes at RESET_RATE; ~1 s in, a ``reset_peer`` toxic on ``reset`` (the
    logger link's proxy, or another one in the negative control) until the client reports a break
    (at most ``wait_break`` s). The client re-dials with noaa's backoff. As in Toxiproxy, the toxic
    fires on the next envelope downstream, drops it and closes the client's connection, with a FIN
    because that connection was accepted before the toxic existed (a re-dial made while it exists
    would get a RST); either way the client sees the stream end without a close frame (1006)."""
    run = deployment.stream_logs("dev", n, timeout=40, extra=("--retries", "5", "--settle", "4"))
    assert run.wait_event("connected", 20), run.raw
    emitter = _emit_in_background(deployment, n, RESET_RATE)
    run.wait_event("first_envelope", 20)  # from the stream's first envelope (the emitter may start late),
    run.wait_event("never", 1)  # let ~500 more through before the reset
    reset.add_toxic(name="rst", type="reset_peer", stream="downstream", attributes={"timeout": 0})
    try:
        run.wait_event("break", wait_break)
    finally:
        reset.destroy_toxic("rst")
    emitter.join(30)
    return deployment.evidence(run, run.result(60))


@pytest.mark.check("fault_reset_gap")
@pytest.mark.waits(10)
def test_reset_mid_stream_is_seen_and_the_gap_is_counted(deployment: Deployment, logger_link: Any,
                                                         verdict: Verdict) -> None:
    """The loss in a reset gap is measured by sequence numbers: the emitter numbers every line,
    the client re-dials (noaa's backoff) and the ledger lists exactly which numbers never came.
    It passes only if the break was seen, the last envelope came after it, and the loss is one gap."""
    n = 3000
    ev = reset_attempt(deployment, logger_link, n)
    delivery, breaks = ev.client["delivery"], ev.outcome.get("breaks") or []
    verdict("fault_reset_gap", classify_redial(ev, n), evidence=ev, gap=delivery["lost_ranges"],
            lost=delivery["lost"], gap_ms=delivery["lost"] * 1000 / RESET_RATE, redials=len(breaks), breaks=breaks,
            **timeline_details(ev.client))


@pytest.mark.check("fault_limit_data")
def test_limit_data_cut_is_detected_not_hung(deployment: Deployment, logger_link: Any,
                                            verdict: Verdict) -> None:
    logger_link.add_toxic(type="limit_data", stream="downstream", attributes={"bytes": 20000})
    ev = stream_attempt(deployment, 1000, rate=1000, timeout=20)
    verdict("fault_limit_data", classify_stream(ev, 1000), evidence=ev, received=ev.client["delivery"]["unique"],
            outcome=ev.outcome)


@pytest.mark.check("fault_timeout")
@pytest.mark.waits(10)
def test_timeout_toxic_ends_in_a_bounded_handshake_failure(deployment: Deployment, logger_link: Any,
                                                          verdict: Verdict) -> None:
    """The timeout toxic swallows the client's bytes: TCP connects, the handshake gets no answer, and
    the client must give up at its open timeout (handshake_timeout, not connect_timeout, not a hang)."""
    logger_link.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 0})
    run = deployment.stream_logs("dev", 1, timeout=30)
    ev = deployment.evidence(run, run.result(60))
    verdict("fault_timeout", classify_stream(ev, 0), evidence=ev, error=ev.outcome.get("error"),
            error_kind=ev.outcome.get("error_kind"))


LINKS = ("client-lb", "lb-router", "router-tc", "doppler-tc")
ALL_LINKS_N = 50


def links_used(deployment: Deployment, ev: Evidence) -> dict[str, int]:
    """Per link, how many of ``ev``'s records show it crossing that link's fault proxy
    (``harness.fault_links``: from the witness, never from a fault proxy's logs)."""
    cf = deployment.networks["cf"]

    def ips(*names: str) -> set[str]:
        return {deployment.nodes[n].ip(cf) for n in names}

    return links_crossed(ev, {"client-lb": set(deployment.fault_proxy_ips()),
                              "lb-router": ips(*(f"fp-router-{i}" for i in range(deployment.topology.router_count))),
                              "router-tc": ips("fp-tc"), "doppler-tc": ips("fp-doppler")})


@pytest.mark.check("fault_latency", column="fault_all_links")
@pytest.mark.topology("http-upgrade-faults", driver="nginx")
def test_every_link_of_the_log_path_carries_toxics(deployment: Deployment, verdict: Verdict) -> None:
    """20 ms downstream on each of the four links at once: every link carried this attempt (its
    records show the link's fault proxy as the peer, ``links_used``), the delays add up (median
    above what three links can reach), and the stream survives complete and in order."""
    proxies = {link: deployment.fault_proxy(link) for link in LINKS}
    try:
        for items in proxies.values():
            for proxy in items:
                proxy.add_toxic(type="latency", stream="downstream", attributes={"latency": 20})
        # 25 ms apart, longer than one link's delay, so no envelope queues behind another's and
        # the median is the sum of the delays plus the path's own few ms (measured: four links
        # 83 ms, three 63 ms; at 200/s queueing lifts three links to 84 ms and hides a missing one).
        ev = stream_attempt(deployment, ALL_LINKS_N, rate=40)
    finally:
        for items in proxies.values():
            for proxy in items:
                proxy.reset()
    opened = links_used(deployment, ev)
    p50 = ev.client["delivery"]["latency_ms_p50"]
    unused = [link for link, count in opened.items() if count == 0]
    applied = latency_not_applied(ev, ALL_LINKS_FLOOR_MS)
    if unused:
        applied = f"no record of this attempt shows traffic through {', '.join(unused)}: {opened}"
    verdict("fault_latency", classify_impaired_stream(ev, ALL_LINKS_N, applied), column="fault_all_links", evidence=ev,
            links_used=opened, p50_ms=p50)
