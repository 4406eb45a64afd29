"""Faults on the client<->LB link, injected through the Toxiproxy API (toxiproxy-python).

Each scenario runs on every LB under test, in HTTP mode (http-upgrade) and TCP mode
(tcp-same-port), has a bound, and records its outcome for the report's fault matrix.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

import pytest

from harness.deployment import Deployment
from harness.verdicts import PASS, classify_stream

Verdict = Callable[..., None]
pytestmark = [pytest.mark.topology(name, faults=["client-lb"]) for name in ("http-upgrade", "tcp-same-port")]


@pytest.fixture
def logger_link(deployment: Deployment) -> Iterator[Any]:
    """The fault proxy in front of the LB's WebSocket port; its toxics are removed afterwards."""
    port = deployment.topology.logger_port
    proxy = next(p for p in deployment.fault_proxy("client-lb") if p.name.endswith(f"-{port}"))
    yield proxy
    proxy.reset()


def _emit_in_background(deployment: Deployment, count: int, rate: float) -> threading.Thread:
    thread = threading.Thread(target=deployment.emit, args=(count,), kwargs={"rate": rate}, daemon=True)
    thread.start()
    return thread


def _stream(deployment: Deployment, n: int, *, rate: float = 0, timeout: float = 60,
            extra: tuple[str, ...] = ()) -> dict[str, Any]:
    run = deployment.stream_logs("dev", n, timeout=timeout, extra=extra)
    if run.wait_event("connected", 20):
        deployment.emit(n, rate=rate)
    return run.result(timeout + 30)


def test_latency_and_jitter_keep_the_stream_complete_and_ordered(deployment: Deployment, logger_link: Any,
                                                                 verdict: Verdict) -> None:
    logger_link.add_toxic(type="latency", stream="downstream", attributes={"latency": 150, "jitter": 50})
    result = _stream(deployment, 300, rate=300)
    delivery = result["delivery"]
    observed = classify_stream(result["outcome"], delivery, 300, True)
    if observed == PASS and delivery["out_of_order"]:
        observed = f"out of order: {delivery['out_of_order']}"
    if observed == PASS and delivery["latency_ms_p50"] < 100:
        observed = f"latency toxic not applied (p50 {delivery['latency_ms_p50']:.0f} ms)"
    verdict("fault_latency", observed, p50_ms=delivery["latency_ms_p50"], p99_ms=delivery["latency_ms_p99"])


def test_slicer_on_handshake_and_frames_still_works(deployment: Deployment, logger_link: Any,
                                                     verdict: Verdict) -> None:
    logger_link.add_toxic(type="slicer", stream="upstream", attributes={"average_size": 4, "size_variation": 2,
                                                                         "delay": 500})
    logger_link.add_toxic(type="slicer", stream="downstream", attributes={"average_size": 32, "size_variation": 16,
                                                                           "delay": 50})
    result = _stream(deployment, 300, rate=500)
    verdict("fault_slicer", classify_stream(result["outcome"], result["delivery"], 300, True),
            delivery=result["delivery"])


def test_reset_mid_stream_is_seen_and_the_gap_is_counted(deployment: Deployment, logger_link: Any,
                                                         verdict: Verdict) -> None:
    """The loss in a reset gap is measured by sequence numbers: the emitter numbers every line,
    the client re-dials (noaa's backoff) and the ledger lists exactly which numbers never came."""
    n = 3000
    run = deployment.stream_logs("dev", n, timeout=40, extra=("--retries", "5", "--settle", "4"))
    assert run.wait_event("connected", 20), run.raw
    emitter = _emit_in_background(deployment, n, rate=500)
    run.wait_event("never", 2)  # let ~1000 envelopes through first
    logger_link.add_toxic(name="rst", type="reset_peer", stream="downstream", attributes={"timeout": 0})
    broke = run.wait_event("break", 10)
    logger_link.destroy_toxic("rst")
    emitter.join(30)
    result = run.result(60)
    delivery, breaks = result["delivery"], result["outcome"]["breaks"]
    gaps = delivery["lost_ranges"]
    if broke is None or not breaks:
        observed = "reset not seen by the client"
    elif len(gaps) != 1 or delivery["unique"] + delivery["lost"] != n or delivery["duplicates"]:
        observed = f"unexpected loss pattern: gaps {gaps}, duplicates {delivery['duplicates']}"
    else:
        observed = PASS
    verdict("fault_reset_gap", observed, gap=gaps, lost=delivery["lost"], breaks=breaks,
            gap_ms_at_500_per_s=delivery["lost"] * 2)


def test_limit_data_cut_is_detected_not_hung(deployment: Deployment, logger_link: Any,
                                            verdict: Verdict) -> None:
    logger_link.add_toxic(type="limit_data", stream="downstream", attributes={"bytes": 20000})
    result = _stream(deployment, 1000, rate=1000, timeout=20)
    verdict("fault_limit_data", classify_stream(result["outcome"], result["delivery"], 1000, True),
            received=result["delivery"]["unique"], outcome=result["outcome"])


def test_timeout_toxic_ends_in_a_bounded_handshake_failure(deployment: Deployment, logger_link: Any,
                                                          verdict: Verdict) -> None:
    logger_link.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 0})
    result = deployment.stream_logs("dev", 1, timeout=30).result(60)
    verdict("fault_timeout", classify_stream(result["outcome"], None, 0, None), error=result["outcome"]["error"])


@pytest.mark.topology("http-upgrade-faults", driver="nginx")
def test_every_link_of_the_log_path_carries_toxics(deployment: Deployment, verdict: Verdict) -> None:
    """Latency on each of the four links at once: every link is really proxied, the stream survives."""
    links = ("client-lb", "lb-router", "router-tc", "doppler-tc")
    proxies = {link: deployment.fault_proxy(link) for link in links}
    try:
        for link, items in proxies.items():
            for proxy in items:
                proxy.add_toxic(type="latency", stream="downstream", attributes={"latency": 20})
        result = _stream(deployment, 200, rate=200)
    finally:
        for items in proxies.values():
            for proxy in items:
                proxy.reset()
    opened = {link: sum(deployment.nodes[p.server].logs().count('"event": "link_open"') for p in items)
              for link, items in proxies.items()}
    delivery = result["delivery"]
    observed = classify_stream(result["outcome"], delivery, 200, True)
    if observed == PASS and (min(opened.values()) == 0 or delivery["latency_ms_p50"] < 60):
        observed = f"a link was not proxied: {opened}, p50 {delivery['latency_ms_p50']}"
    verdict("fault_latency", observed, column="fault_all_links", links_opened=opened,
            p50_ms=delivery["latency_ms_p50"])
