"""The seed's rules, as predictions per cell, and the classification of what was observed."""

from __future__ import annotations

import pytest

from harness import drivers, topology, verdicts
from harness.outcomes import Outcome
from harness.verdicts import PASS

DRIVERS = drivers.load_all()
TOPOLOGIES = topology.load_all()


def expect(topo: str, driver: str, **kw: float) -> dict[str, str]:
    bound = TOPOLOGIES[topo].with_driver(driver)
    return {k: v.outcome for k, v in verdicts.expected(bound, DRIVERS, **kw).items()}


def test_http_upgrade_on_nginx_works_everywhere() -> None:
    out = expect("http-upgrade", "nginx")
    core = ("logs", "firehose", "recent_logs", "auth_401", "auth_404", "xff", "xfp", "idle", "fault_reset_gap")
    assert {out[check] for check in core} == {PASS}
    assert (out["fault_limit_data"], out["fault_timeout"]) == ("stream_cut", "handshake_timeout")


def test_http_only_elb_fails_websockets_but_keeps_auth_and_forwarding_headers() -> None:
    out = expect("http-only-elb", "elb")
    assert out["logs"] == out["firehose"] == "upgrade_stripped"
    assert out["auth_401"] == out["auth_404"] == out["recent_logs"] == out["xff"] == out["xfp"] == PASS


def test_tcp_same_port_loses_client_address_unless_proxy_protocol() -> None:
    assert expect("tcp-same-port", "haproxy")["xff"] == "lb_ip_as_client"
    assert expect("tcp-same-port-proxy", "haproxy")["xff"] == PASS
    assert expect("tcp-same-port-proxy-v2", "haproxy")["logs"] == "proxy_header_rejected"


def test_fault_proxy_in_front_of_the_lb_is_seen_as_the_client() -> None:
    assert expect("http-upgrade-faults", "nginx")["xff"] == "proxy_ip_as_client"
    assert verdicts.classify_xff("10.0.0.9, 10.1.0.5", "10.0.0.2", set(), frozenset({"10.0.0.9"})).outcome is \
        Outcome.PROXY_IP_AS_CLIENT


def test_logger_port_mismatch_is_a_refused_dial() -> None:
    out = expect("tcp-alt-port-mismatch", "nginx")
    assert out["logs"] == out["recent_logs"] == "dial_refused" and out["xff"] == PASS


def test_idle_expectation_compares_ping_interval_with_lb_idle_timeout() -> None:
    short = TOPOLOGIES["http-upgrade"].with_driver("nginx").with_idle_timeout(4)
    assert verdicts.expected(short, DRIVERS, keepalive_interval=1)["idle"].outcome == PASS
    assert verdicts.expected(short, DRIVERS, keepalive_interval=30)["idle"].outcome == "idle_cut"


@pytest.mark.parametrize("name, driver, ok", [
    ("http-upgrade", "elb", False), ("http-only-elb", "nginx", False), ("http-only-elb", "nginx-no-upgrade", True),
    ("tcp-same-port", "nginx-no-upgrade", False), ("tcp-same-port-proxy-v2", "nginx", False),
    ("tcp-same-port-proxy-v2", "haproxy", True), ("dedicated-ws-lb", "elb", True),
])
def test_driver_capabilities_decide_which_cells_exist(name: str, driver: str, ok: bool) -> None:
    assert (DRIVERS[driver].supports(TOPOLOGIES[name]) is None) is ok




def test_every_prediction_is_an_outcome() -> None:
    for name, topo in TOPOLOGIES.items():
        for driver in DRIVERS:
            if DRIVERS[driver].supports(topo) is None:
                bound = topo.with_driver(driver)
                assert all(isinstance(e.outcome, Outcome) for e in verdicts.expected(bound, DRIVERS).values()), name


@pytest.mark.parametrize("interval, timeout, outcome", [
    (15, 30, "stream_cut"),  # the TC's default keepalive notices after ~45 s: caddy's 10 s read_timeout first
    (1, 4, "keepalive_1008"),  # a fast keepalive (the kernel-fault cells) notices after ~5 s (measured 5.2-5.7 s)
])
def test_an_lb_idle_cut_wins_a_silent_drop_only_when_it_comes_before_the_tc_keepalive(
        interval: float, timeout: float, outcome: str) -> None:
    got = expect("http-upgrade", "caddy-read-timeout", keepalive_interval=interval, keepalive_timeout=timeout)
    assert got["kernel_blackhole"] == got["kernel_partition"] == outcome


def test_a_driver_measured_to_hold_a_stalled_client_predicts_lb_holds_connection() -> None:
    """tcp_peer_zero_window: pass by default; lb_holds_connection where the driver data says so."""
    from dataclasses import replace

    holding = {**DRIVERS, "nginx": replace(DRIVERS["nginx"], vars={**DRIVERS["nginx"].vars,
                                                                  "holds_stalled_client": True})}
    topo = TOPOLOGIES["http-upgrade"].with_driver("nginx")
    assert verdicts.expected(topo, DRIVERS)["tcp_peer_zero_window"].outcome == PASS
    assert verdicts.expected(topo, holding)["tcp_peer_zero_window"].outcome == Outcome.LB_HOLDS_CONNECTION
