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


# ---- answer first, named checks, diagrams, charts, the versioned schema (issue 12) -------------------

def _schema_validator():  # type: ignore[no-untyped-def]
    import jsonschema

    schema = json.loads(report.SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def traced(check: str, observed: str, expected: str, cell: str, ok: list[bool | None]) -> dict[str, object]:
    names = ["client → LB", "LB → router", "router → backend", "stream end"]
    hops = [{"hop": n, "ok": o, "facts": [f"{n} fact"], "node": "router-0"} for n, o in zip(names, ok)]
    return {**rec(check, observed, expected, cell), "hops": hops}


def matrix_records() -> list[dict[str, object]]:
    return [traced("logs", "pass", "pass", "http-upgrade-nginx", [True, True, True, True]),
            rec("xff", "pass", "pass", "http-upgrade-nginx"),
            traced("logs", "upgrade_stripped", "upgrade_stripped", "http-only-elb-elb", [True, False, None, None]),
            {**rec("router_death", "pass", "pass", "http-upgrade-nginx"),
             "details": {"gap": [[410, 524]], "gap_ms": 575.0, "redials": 1,
                         "delivery": {"latency_ms_p50": 66.2, "latency_ms_p99": 95.7}}},
            {**rec("crafted_rst", "rst_ignored", "half_open", "http-upgrade-nginx"), "evidence": "evidence/t1"}]


def test_report_json_validates_against_its_versioned_schema(tmp_path: Path) -> None:
    report.write(matrix_records(), tmp_path, topology.load_all(), 3.0)
    data = json.loads((tmp_path / "report.json").read_text())
    _schema_validator().validate(data)
    assert data["schema_version"] == report.SCHEMA_VERSION
    assert data["checks"]["router_death"]["title"] == "the stream survives a router dying mid-stream " \
                                                      "(re-dial lands on another router)"
    assert data["records"][0]["check"] == "logs"  # raw ids stay in JSON


def test_the_schema_rejects_a_report_that_breaks_it(tmp_path: Path) -> None:
    """Negative control: the validation can fail (a status outside the closed set, a missing field)."""
    import jsonschema

    report.write(matrix_records(), tmp_path, topology.load_all(), 3.0)
    data = json.loads((tmp_path / "report.json").read_text())
    data["records"][0]["status"] = "green"
    errors = list(_schema_validator().iter_errors(data))
    del data["answer"]
    errors += list(_schema_validator().iter_errors(data))
    assert {e.validator for e in errors} >= {"enum", "required"}
    assert isinstance(errors[0], jsonschema.ValidationError)


def test_the_answer_comes_first_then_the_prediction_then_details(tmp_path: Path) -> None:
    report.write(matrix_records(), tmp_path, topology.load_all(), 3.0)
    html, md = (tmp_path / "report.html").read_text(), (tmp_path / "report.md").read_text()
    for text in (html, md):
        order = [text.index(s) for s in ("Answer: which strategies", "Against the prediction", "Details per cell",
                                         "Full matrix")]
        assert order == sorted(order)
        assert "an app&#39;s logs stream" in text or "an app's logs stream" in text  # titles, not only ids
    assert 'data-lb="elb" data-strategy="http-upgrade" data-verdict="not_supported"' in html
    assert 'data-lb="nginx" data-strategy="http-upgrade" data-verdict="supported"' in html
    assert "**not supported**: why upgrade_stripped" in md
    assert "after a forged RST" in md and "mismatch: expected half_open, observed rst_ignored" in md


def test_each_cell_has_its_coloured_diagram_and_charts(tmp_path: Path) -> None:
    from harness import diagrams

    report.write(matrix_records(), tmp_path, topology.load_all(), 3.0)
    html = (tmp_path / "report.html").read_text()
    elb = html[html.index('id="cell-http-only-elb-elb"'):]
    elb = elb[:elb.index("</section>")]
    assert "<svg" in elb and diagrams.BROKEN in elb and "broke at: LB → router" in elb
    nginx = html[html.index('id="cell-http-upgrade-nginx"'):]
    nginx = nginx[:nginx.index("</section>")]
    assert diagrams.OK in nginx and "broke at" not in nginx
    assert 'aria-label="latency percentiles"' in nginx and "router_death p99" in nginx
    assert 'aria-label="delivery gap"' in nginx and "lost 115 envelopes, 575 ms, 1 re-dial(s)" in nginx
    assert 'href="evidence/t1"' in nginx


def test_an_uncatalogued_check_renders_with_its_raw_id_and_is_named(tmp_path: Path) -> None:
    report.write([rec("frame_fidelity_64k", "pass", "pass")], tmp_path, topology.load_all(), 1.0)
    html, md = (tmp_path / "report.html").read_text(), (tmp_path / "report.md").read_text()
    assert "<td title=\"tests: \">frame_fidelity_64k<br><code>frame_fidelity_64k</code>" in html
    assert "Not in harness/checks.yaml" in html and "checks frame_fidelity_64k" in html
    assert "frame_fidelity_64k" in md and "Not in harness/checks.yaml (raw ids, not in the answer): frame_fidelity_64k" in md


# ---- delivery timelines for fault and failover checks (issue 12) ---------------------------------------

def timeline_record() -> dict[str, object]:
    from tests.unit.test_timeline_chart import client_result

    from harness import timeline_chart

    return {**rec("router_death", "pass", "pass"),
            "details": {"gap": [[420, 631]], "redials": 1, "timeline": timeline_chart.detail(client_result())}}


def test_a_timeline_renders_as_svg_with_its_gap_labelled_and_as_one_md_line(tmp_path: Path) -> None:
    report.write([timeline_record()], tmp_path, topology.load_all(), 3.0)
    data = json.loads((tmp_path / "report.json").read_text())
    _schema_validator().validate(data)
    html, md = (tmp_path / "report.html").read_text(), (tmp_path / "report.md").read_text()
    cell = html[html.index('id="cell-http-upgrade-nginx"'):]
    cell = cell[:cell.index("</section>")]
    assert '<svg class="chart timeline" data-check="router_death"' in cell
    assert cell.count('class="gap-band"') == 1 and ">1.2 s, 212 lost</text>" in cell
    assert cell.count('class="break"') == 1 and cell.count('class="redial"') == 1
    assert "- **http-upgrade-nginx / router_death**: gap 1.2 s, 212 lost, re-dialled at 3.2 s" in md
    assert '"points"' not in md  # the measurements line leaves the timeline out


def test_the_schema_rejects_a_malformed_timeline(tmp_path: Path) -> None:
    """Negative control for the timeline's schema: a point that is not [seconds, seq] fails."""
    report.write([timeline_record()], tmp_path, topology.load_all(), 3.0)
    data = json.loads((tmp_path / "report.json").read_text())
    data["records"][0]["details"]["timeline"]["points"][0] = ["0.1", 0]
    errors = list(_schema_validator().iter_errors(data))
    del data["records"][0]["details"]["timeline"]["breaks"]
    errors += list(_schema_validator().iter_errors(data))
    assert {e.validator for e in errors} >= {"type", "required"}
