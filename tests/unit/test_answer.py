"""The answer first: verdicts per LB and seed strategy from the catalog and the records (no Docker)."""

from __future__ import annotations

from typing import Any

from harness import answer, checks, report

SUPPORT = ("logs", "firehose", "recent_logs", "auth_401", "auth_404")
STRIPPED = "LB dropped the Upgrade header"


def rec(topo: str, driver: str, check: str, observed: str = "pass", expected: str | None = None,
        status: str | None = None) -> dict[str, Any]:
    out = {"cell": f"{topo}-{driver}", "topology": topo, "driver": driver, "check": check, "observed": observed,
           "expected": expected or observed, "ok": (expected or observed) == observed, "because": "b",
           "diagnosis": STRIPPED if observed == "upgrade_stripped" else f"why {observed}", "environment": {}}
    if status:
        out["status"] = status
    return report.normalize(out)


def cell(topo: str, driver: str, **observed: str) -> list[dict[str, Any]]:
    return [rec(topo, driver, c, observed.get(c, "pass")) for c in (*SUPPORT, "xff", "xfp")]


def verdicts(records: list[dict[str, Any]], versions: dict[str, str] | None = None) -> dict[str, Any]:
    return answer.answer(report.group(records), checks.load(), versions or {})


def strategy(data: dict[str, Any], driver: str, sid: str) -> dict[str, Any]:
    lb = next(lb for lb in data["lbs"] if lb["driver"] == driver)
    return next(s for s in lb["strategies"] if s["strategy"] == sid)


def test_supported_caveat_not_supported_and_not_run() -> None:
    records = (cell("http-upgrade", "nginx") + cell("tcp-same-port", "nginx", xff="lb_ip_as_client")
               + cell("tcp-same-port-proxy", "nginx")
               + cell("http-only-elb", "elb", logs="upgrade_stripped", firehose="upgrade_stripped"))
    data = verdicts(records, {"nginx": "nginx version: nginx/1.22.1"})
    assert strategy(data, "nginx", "http-upgrade")["verdict"] == "supported"
    tcp = strategy(data, "nginx", "tcp-same-port")
    assert tcp["verdict"] == "caveat"
    assert tcp["line"] == "X-Forwarded-For names the LB unless PROXY v1 is on (tcp-same-port-proxy: supported)"
    elb = strategy(data, "elb", "http-upgrade")
    assert elb["verdict"] == "not_supported" and elb["line"] == STRIPPED
    assert {k["kind"]: k["verdict"] for k in elb["kinds"]} == {"noaa-stream": "not_supported",
                                                               "noaa-firehose": "not_supported"}
    assert strategy(data, "elb", "dedicated-ws-lb")["verdict"] == "not_run"
    assert next(lb for lb in data["lbs"] if lb["driver"] == "nginx")["version"] == "1.22.1"


def test_one_client_kind_failing_makes_it_partial_and_says_which() -> None:
    data = verdicts(cell("dedicated-ws-lb", "haproxy", firehose="firehose_split_wrong"))
    dedicated = strategy(data, "haproxy", "dedicated-ws-lb")
    assert dedicated["verdict"] == "partial" and dedicated["line"].startswith("not for Firehose nozzle (noaa)")


def test_a_crashed_support_check_is_could_not_tell_never_supported() -> None:
    records = cell("tcp-alt-port", "haproxy")
    records[0] = rec("tcp-alt-port", "haproxy", "logs", "error", "pass", status="error")
    assert strategy(verdicts(records), "haproxy", "tcp-alt-port")["verdict"] == "unknown"


def test_the_best_base_topology_decides_and_fault_checks_do_not() -> None:
    records = (cell("tcp-alt-port-4443", "elb", logs="dial_refused") + cell("tcp-alt-port", "elb")
               + [rec("tcp-alt-port", "elb", "kernel_loss", "impairment_not_applied", "pass")])
    alt = strategy(verdicts(records), "elb", "tcp-alt-port")
    assert alt["verdict"] == "supported" and alt["cells"] == ["tcp-alt-port-4443-elb", "tcp-alt-port-elb"]


def test_mismatches_and_errors_are_listed_against_the_prediction_and_pitfalls_apart() -> None:
    records = cell("http-upgrade", "haproxy") + [
        rec("http-upgrade", "haproxy", "crafted_rst", "rst_ignored", "half_open"),
        rec("tcp-alt-port-mismatch", "haproxy", "logs", "dial_refused")]
    data = verdicts(records)
    assert [(m["cell"], m["check"], m["status"]) for m in data["against_prediction"]] == [
        ("http-upgrade-haproxy", "crafted_rst", "mismatch")]
    assert data["against_prediction"][0]["title"].startswith("after a forged RST")
    assert [(p["cell"], p["verdict"], p["as_predicted"]) for p in data["pitfalls"]] == [
        ("tcp-alt-port-mismatch-haproxy", "not_supported", True)]


def test_unknown_checks_and_topologies_are_named_not_dropped() -> None:
    data = verdicts([rec("http-upgrade", "nginx", "frame_fidelity_64k"), rec("my-topology", "nginx", "logs")])
    assert data["unknown_checks"] == ["frame_fidelity_64k"] and data["unlisted_topologies"] == ["my-topology"]
