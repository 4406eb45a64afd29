"""``links_crossed`` reads link use from one attempt's records: each link is counted only when
that attempt's records name its fault proxy, and a skipped link counts zero (the negative control
of ``fault_all_links``' "every link carried this attempt")."""

from __future__ import annotations

from typing import Any

from harness.fault_links import links_crossed
from harness.witness import Evidence

PROXIES = {"client-lb": {"10.0.1.5"}, "lb-router": {"10.0.2.7", "10.0.2.8"}, "router-tc": {"10.0.2.9"},
           "doppler-tc": {"10.0.2.10"}}


def _evidence(*, xff: str, router_peer: str, tc_peer: str, doppler_peers: list[str]) -> Evidence:
    routers: tuple[dict[str, Any], ...] = (
        {"path": "/v2/info", "peer": router_peer, "headers": [["X-Forwarded-For", xff]]},  # discovery: not the stream
        {"path": "/apps/a/stream", "peer": router_peer, "headers": [["Host", "doppler"], ["X-Forwarded-For", xff]]},
    )
    tc = ({"event": "stream_open", "peer": tc_peer, "doppler_peers": doppler_peers},
          {"event": "stream_closed", "peer": tc_peer})
    return Evidence("a1", 0.0, 1.0, {}, routers, tc)


def test_every_link_crossed_is_counted_once() -> None:
    ev = _evidence(xff="10.0.1.5", router_peer="10.0.2.8", tc_peer="10.0.2.9", doppler_peers=["10.0.2.10"])
    assert links_crossed(ev, PROXIES) == {"client-lb": 1, "lb-router": 1, "router-tc": 1, "doppler-tc": 1}


def test_links_the_attempt_went_around_count_zero() -> None:
    """The client reached the LB directly, the LB reached the router directly, the router the TC
    directly, and the TC its Doppler directly: no fault proxy in any record."""
    ev = _evidence(xff="10.0.1.2", router_peer="10.0.2.3", tc_peer="10.0.2.4", doppler_peers=["10.0.2.6"])
    assert links_crossed(ev, PROXIES) == {"client-lb": 0, "lb-router": 0, "router-tc": 0, "doppler-tc": 0}


def test_xff_is_matched_by_element_not_by_substring() -> None:
    ev = _evidence(xff="10.0.1.50, 10.0.1.55", router_peer="10.0.2.7", tc_peer="10.0.2.9", doppler_peers=[])
    assert links_crossed(ev, PROXIES) == {"client-lb": 0, "lb-router": 1, "router-tc": 1, "doppler-tc": 0}
    ev = _evidence(xff="203.0.113.9, 10.0.1.5", router_peer="10.0.2.7", tc_peer="10.0.2.9", doppler_peers=[])
    assert links_crossed(ev, PROXIES)["client-lb"] == 1
