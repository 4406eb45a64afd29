from __future__ import annotations

import json
from pathlib import Path

from harness import report, topology


def rec(check: str, observed: str, expected: str, cell: str = "http-upgrade-nginx") -> dict[str, object]:
    return {"cell": cell, "topology": cell.rsplit("-", 1)[0], "driver": cell.rsplit("-", 1)[1], "check": check,
            "expected": expected, "because": "b", "observed": observed, "diagnosis": f"why {observed}",
            "ok": observed == expected, "environment": {"lb_versions": {"nginx": "nginx/1.22.1"}, "images": {}}}


def test_report_files_show_pass_expected_failure_and_mismatch(tmp_path: Path) -> None:
    records = [rec("logs", "pass", "pass"), rec("xff", "lb_ip_as_client", "lb_ip_as_client"),
               rec("xfp", "status_502", "pass")]
    files = report.write(records, tmp_path, topology.load_all(), 12.0)
    assert {f.name for f in files} == {"report.json", "report.md", "report.html"}
    md = (tmp_path / "report.md").read_text()
    assert "| http-upgrade | nginx | pass | fails as expected: lb_ip_as_client | MISMATCH" in md
    assert "why status_502" in md and "nginx/1.22.1" in md
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["cells"]["http-upgrade-nginx"]["checks"]["xfp"]["ok"] is False
    assert 'class="mismatch"' in (tmp_path / "report.html").read_text()


def test_terminal_matrix_and_diagram() -> None:
    text = report.to_terminal(report.group([rec("logs", "pass", "pass")]))
    assert "http-upgrade" in text and "pass" in text
    diagram = report.diagram(topology.load_all()["dedicated-ws-lb"])
    assert "doppler.sys.example.com" in diagram and "ws-lb" in diagram and "wss://doppler" in diagram


def crashed(check: str, reason: str, cell: str = "http-upgrade-nginx", status: str = "error") -> dict[str, object]:
    """A record the plugin makes for a check that errored or skipped before its verdict."""
    return {**rec(check, status, "pass", cell), "status": status, "detail": reason, "diagnosis": reason, "ok": False,
            "environment": {}}


def test_crashed_skipped_and_not_applicable_checks_are_visible_and_counted(tmp_path: Path) -> None:
    records = [rec("logs", "pass", "pass"), rec("xff", "lb_ip_as_client", "lb_ip_as_client"),
               crashed("firehose", "ConnectionResetError: peer went away"),
               crashed("kernel_delay", "kernel lacks sch_netem", status="skipped"),
               {**rec("xfp", "not_applicable", "pass"), "detail": "no HTTP listener"},
               rec("logs", "pass", "pass", cell="tcp-same-port-haproxy")]
    summary = "2 cells, 6 checks: 2 pass, 1 fail as predicted, 0 mismatch, 1 error, 1 skipped, 1 n/a, 12 s"
    assert report.summary(records, 12.0) == summary
    assert not report.failing([r for r in records if r["check"] != "firehose"]) and report.failing(records)
    report.write(records, tmp_path, topology.load_all(), 12.0)
    md, html = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    for text in (md, html):
        assert summary in text
        assert "ERROR: ConnectionResetError: peer went away" in text
        assert "skipped: kernel lacks sch_netem" in text and "n/a: no HTTP listener" in text
    assert "| http-upgrade | nginx | pass | ERROR: ConnectionResetError: peer went away | fails as expected" in md
    assert 'class="error"' in html and 'class="skipped"' in html and 'class="na"' in html
    data = json.loads((tmp_path / "report.json").read_text())
    assert [r["status"] for r in data["records"]] == ["pass", "as_predicted", "error", "skipped", "n/a", "pass"]
    assert data["meta"]["counts"] == {"pass": 2, "as_predicted": 1, "mismatch": 0, "error": 1, "skipped": 1,
                                      "n/a": 1}
    assert data["cells"]["http-upgrade-nginx"]["checks"]["xfp"]["status"] == "n/a"
    terminal = report.to_terminal(report.group(records))
    assert "ERROR" in terminal and "skip" in terminal and "n/a" in terminal


def test_not_applicable_is_never_a_mismatch() -> None:
    na = {**rec("xff", "not_applicable", "lb_ip_as_client"), "detail": "no TCP listener"}
    assert report.status_of(na) == "n/a" and not report.failing([na])
    assert report.cell_value(na) == "n/a: no TCP listener"


def test_outcome_enums_become_plain_strings() -> None:
    from enum import Enum

    class Outcome(str, Enum):
        PASS = "pass"
        UPGRADE_STRIPPED = "upgrade_stripped"

    record = report.normalize({**rec("logs", "pass", "pass"), "observed": Outcome.UPGRADE_STRIPPED,
                               "expected": Outcome.UPGRADE_STRIPPED, "ok": True})
    assert record["observed"] == "upgrade_stripped" and type(record["observed"]) is str
    assert record["status"] == "as_predicted"
    assert report.cell_value(record) == "fails as expected: upgrade_stripped"


def test_a_worse_record_of_the_same_cell_and_check_is_not_hidden() -> None:
    cells = report.group([rec("logs", "pass", "pass"), crashed("logs", "teardown failed"), rec("logs", "pass", "pass")])
    assert report.status_of(cells["http-upgrade-nginx"]["checks"]["logs"]) == "error"


def test_evidence_links_are_relative_to_the_report(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r1"
    records = [{**rec("xfp", "status_502", "pass"), "evidence": str(run / "evidence" / "t1")},
               {**rec("xff", "status_502", "pass"), "evidence": "evidence/t2"}]
    report.write(records, run, topology.load_all(), 1.0)
    html = (run / "report.html").read_text()
    assert 'href="evidence/t1"' in html and 'href="evidence/t2"' in html and str(tmp_path) not in html
    assert {r["evidence"] for r in json.loads((run / "report.json").read_text())["records"]} == {"evidence/t1",
                                                                                                "evidence/t2"}


def test_a_report_is_written_with_zero_checks_and_says_why(tmp_path: Path) -> None:
    files = report.write([], tmp_path, topology.load_all(), 0.4, note="nothing was collected")
    assert {f.name for f in files} == {"report.json", "report.md", "report.html"}
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["meta"]["summary"] == "0 cells, 0 checks: 0 pass, 0 fail as predicted, 0 mismatch, 0 error, " \
                                      "0 skipped, 0 n/a, 0 s"
    assert data["meta"]["note"] == "nothing was collected" and data["records"] == []
    assert "nothing was collected" in (tmp_path / "report.md").read_text()
    assert "nothing was collected" in (tmp_path / "report.html").read_text()
