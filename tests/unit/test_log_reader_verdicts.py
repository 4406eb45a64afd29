"""Predictions per client kind (the seed's rules plus today's facts) and the classification of
Log Cache, RLP gateway and current-profile Traffic Controller evidence, without Docker."""

from __future__ import annotations

from typing import Any

import pytest

from harness import drivers, topology, verdicts
from harness.outcomes import Outcome
from harness.verdicts import classify_log_reader, classify_recent_current
from harness.witness import Evidence

DRIVERS = drivers.load_all()
TOPOLOGIES = topology.load_all()
READERS = ("cf_logs_log_cache", "cf_recent_log_cache", "v2_nozzle", "recent_logs_current")


def expect(topo: str, driver: str) -> dict[str, Outcome]:
    bound = TOPOLOGIES[topo].with_driver(driver)
    return {k: v.outcome for k, v in verdicts.expected(bound, DRIVERS).items()}


def test_http_only_elb_breaks_noaa_and_cli_6_49_but_not_cf_logs_on_log_cache() -> None:
    out = expect("http-only-elb", "elb")
    assert out["logs"] == out["firehose"] == Outcome.UPGRADE_STRIPPED
    assert out["cf_logs_log_cache"] == out["cf_recent_log_cache"] == out["v2_nozzle"] == Outcome.PASS
    assert out["recent_logs_current"] == Outcome.RECENT_LOGS_GONE


def test_nginx_in_http_mode_buffers_the_rlp_gateway_stream_haproxy_and_tcp_mode_do_not() -> None:
    assert expect("http-upgrade", "nginx")["v2_nozzle"] == Outcome.RESPONSE_BUFFERED
    assert expect("http-only-elb", "nginx-no-upgrade")["v2_nozzle"] == Outcome.RESPONSE_BUFFERED
    assert expect("http-upgrade", "haproxy")["v2_nozzle"] == Outcome.PASS
    assert expect("tcp-same-port", "nginx")["v2_nozzle"] == Outcome.PASS


def test_port_80_only_topologies_cannot_serve_https_log_paths() -> None:
    import yaml

    data = yaml.safe_load((topology.TOPOLOGIES_DIR / "tcp-same-port-proxy.yaml").read_text())
    for lb in data["load_balancers"]:  # the same strategy on port 80 only
        lb["listeners"] = [lst for lst in lb["listeners"] if lst["port"] == 80]
    data["logger_endpoint"] = {"scheme": "ws", "port": 80}
    bound = topology.parse(data, "port-80-only").with_driver("haproxy")
    out = {k: v.outcome for k, v in verdicts.expected(bound, DRIVERS).items()}
    assert out["cf_logs_log_cache"] == out["v2_nozzle"] == Outcome.DIAL_REFUSED
    assert out["logs"] == Outcome.PASS  # the seed's ws:// path on 80 still works


def test_a_wrong_logger_port_does_not_touch_log_cache() -> None:
    out = expect("tcp-alt-port-mismatch", "haproxy")
    assert out["logs"] == Outcome.DIAL_REFUSED and out["cf_logs_log_cache"] == Outcome.PASS


def test_every_cell_predicts_every_reader_check() -> None:
    for name, topo in TOPOLOGIES.items():
        for driver in DRIVERS.values():
            if driver.supports(topo) is None:
                assert set(READERS) <= set(expect(name, driver.name)), (name, driver.name)


def ev(client: dict[str, Any], *, routers: tuple[dict[str, Any], ...] = (), tc: tuple[dict[str, Any], ...] = (),
       **extra: Any) -> Evidence:
    return Evidence("a1", 100.0, 110.0, client, routers, tc, extra)


def reader(status: int | None = 200, unique: int = 10, kind: str | None = None, **outcome: Any) -> dict[str, Any]:
    return {"status": status, "error_kind": kind, "error": None, "outcome": {"error_kind": kind, **outcome},
            "delivery": {"unique": unique, "lost": 10 - unique, "out_of_order": 0, "latency_ms_p50": 2400.0,
                         "lost_ranges": [[unique, 9]] if unique < 10 else []}}


READ_404 = {"status": 404, "path": "/api/v1/read/x?limit=1", "forwarded_headers": [], "attempt": "a1", "ts": 101.0}
UNKNOWN_ROUTE = {"status": 404, "path": "/api/v1/read/x?limit=1", "attempt": "a1", "ts": 101.0}
PROXY_400 = {"status": 400, "proxy_v2_signature": True, "attempt": "a1", "ts": 101.0}


@pytest.mark.parametrize("case, evidence, outcome", [
    ("all lines", ev(reader()), Outcome.PASS),
    ("lines missing", ev(reader(unique=6)), Outcome.INCOMPLETE),
    ("stream ended by the server", ev(reader(unique=6, closed_by="server")), Outcome.STREAM_CUT),
    ("gateway wrote all, nozzle got some", ev(reader(unique=6), gateway_sent={"envelopes": 10}),
     Outcome.RESPONSE_BUFFERED),
    ("headers held back", ev(reader(status=None, unique=0, kind="response_timeout"), gateway_sent={"envelopes": 10}),
     Outcome.RESPONSE_BUFFERED),
    ("gateway wrote some, nozzle got them all", ev(reader(), gateway_sent={"envelopes": 10}), Outcome.PASS),
    ("Log Cache said 404", ev(reader(status=404, unique=0, kind="http_status"), routers=(READ_404,)),
     Outcome.LOG_READ_DENIED),
    ("gorouter's unknown route", ev(reader(status=404, unique=0, kind="http_status"), routers=(UNKNOWN_ROUTE,)),
     Outcome.UNEXPECTED_STATUS),
    ("PROXY v2 to gorouter", ev(reader(status=400, unique=0, kind="http_status"), routers=(PROXY_400,)),
     Outcome.PROXY_HEADER_REJECTED),
    ("no listener on 443", ev(reader(status=None, unique=0, kind="connect_refused")), Outcome.DIAL_REFUSED),
    ("TLS broke", ev(reader(status=None, unique=0, kind="tls_failed")), Outcome.TLS_FAILED),
    ("no root document", ev(reader(status=None, unique=0, kind="discovery")), Outcome.DISCOVERY_FAILED),
])
def test_log_reader_classification(case: str, evidence: Evidence, outcome: Outcome) -> None:
    assert classify_log_reader(evidence, 10).outcome is outcome, case


REMOVED = {"event": "recent_logs_removed", "attempt": "a1", "ts": 101.0}


@pytest.mark.parametrize("case, evidence, outcome", [
    ("current TC", ev({"status": 404}, tc=(REMOVED,)), Outcome.RECENT_LOGS_GONE),
    ("classic TC (the control)", ev({"status": 200}), Outcome.PASS),
    ("a 404 the TC did not record", ev({"status": 404}), Outcome.UNEXPECTED_STATUS),
    ("refused", ev({"status": None, "error_kind": "connect_refused"}), Outcome.DIAL_REFUSED),
])
def test_recent_logs_current_classification(case: str, evidence: Evidence, outcome: Outcome) -> None:
    assert classify_recent_current(evidence).outcome is outcome, case


def test_a_root_document_the_router_cannot_serve_decides_first() -> None:
    out = expect("tcp-same-port-proxy-v2", "haproxy")
    assert out["cf_logs_log_cache"] == out["v2_nozzle"] == out["recent_logs_current"] == Outcome.PROXY_HEADER_REJECTED
    seen = classify_log_reader(ev(reader(status=400, unique=0, kind="discovery"), routers=(PROXY_400,)), 10)
    assert seen.outcome is Outcome.PROXY_HEADER_REJECTED
