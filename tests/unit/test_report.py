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
