"""report.html in headless Chromium (Debian's chromium + chromium-driver, installed by ci/setup):
the answer, the diagrams and the evidence links render, with no console errors.

Each check here has a negative control: a page whose script throws must show a console error, an
evidence link to a folder that does not exist must be reported, a report without diagrams must
count none.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness import browser, report, topology



@pytest.fixture(scope="module")
def chrome() -> Any:
    missing = browser.available()
    assert missing is None, missing  # a missing browser is a set-up failure, not a skip
    with browser.chromium() as driver:
        yield driver


def records(evidence: str = "evidence/t1") -> list[dict[str, Any]]:
    def rec(cell: str, check: str, observed: str, expected: str, ok: list[bool | None] | None = None,
            **extra: Any) -> dict[str, Any]:
        topo, driver = cell.split("|")
        out = {"cell": f"{topo}-{driver}", "topology": topo, "driver": driver, "check": check, "expected": expected,
               "because": "b", "observed": observed, "diagnosis": f"why {observed}", "ok": observed == expected,
               "environment": {"lb_versions": {"nginx": "nginx version: nginx/1.22.1"}, "images": {}}, **extra}
        if ok:
            names = ["client → LB", "LB → router", "router → backend", "stream end"]
            out["hops"] = [{"hop": n, "ok": o, "facts": [n], "node": "router-0"} for n, o in zip(names, ok)]
        return out

    return [rec("http-upgrade|nginx", "logs", "pass", "pass", [True, True, True, True]),
            rec("tcp-same-port|nginx", "xff", "lb_ip_as_client", "lb_ip_as_client"),
            rec("tcp-same-port|nginx", "logs", "pass", "pass", [True, True, True, True]),
            rec("http-only-elb|elb", "logs", "upgrade_stripped", "upgrade_stripped", [True, False, None, None],
                evidence=evidence)]


def written(tmp_path: Path, recs: list[dict[str, Any]]) -> Path:
    (tmp_path / "evidence" / "t1").mkdir(parents=True, exist_ok=True)
    (tmp_path / "evidence" / "t1" / "router-0.log").write_text("GET /apps/x/stream 400\n")
    report.write(recs, tmp_path, topology.load_all(), 1.0)
    return tmp_path / "report.html"


def look(driver: Any, page: Path) -> dict[str, Any]:
    """What the browser rendered: verdict cells, diagrams drawn, evidence links and whether their
    targets exist, console entries."""
    browser.console(driver)  # drop entries of earlier pages
    driver.get(page.resolve().as_uri())
    seen = driver.execute_script("""
        const box = el => el.getBoundingClientRect();
        return {
          verdicts: [...document.querySelectorAll('#answer td.verdict')].map(td => td.dataset.verdict),
          answerTop: box(document.querySelector('#answer')).top,
          diagrams: [...document.querySelectorAll('.diagram svg')]
                      .filter(s => box(s).width > 100 && box(s).height > 40).length,
          links: [...document.querySelectorAll('a.evidence')].map(a => a.href),
          timelines: [...document.querySelectorAll('svg.timeline')]
                       .filter(s => box(s).width > 100 && box(s).height > 40)
                       .map(s => ({dots: s.querySelectorAll('circle').length,
                                   bands: [...s.querySelectorAll('rect.gap-band')].filter(r => box(r).width > 0).length,
                                   labels: [...s.querySelectorAll('text.gap-label')].map(t => t.textContent)})),
        };""")
    seen["missing"] = [href for href in seen["links"] if not Path(href.removeprefix("file://")).exists()]
    seen["console"] = [e for e in browser.console(driver) if e.get("level") in ("SEVERE", "WARNING")]
    return seen


def test_summary_diagrams_and_evidence_links_render_without_console_errors(chrome: Any, tmp_path: Path) -> None:
    seen = look(chrome, written(tmp_path, records()))
    assert seen["verdicts"].count("supported") == 1
    assert "not_supported" in seen["verdicts"] and "caveat" in seen["verdicts"]
    assert seen["answerTop"] < 200  # the answer is on the first screen
    assert seen["diagrams"] == 3  # one drawn diagram per cell
    assert len(seen["links"]) == 1 and seen["missing"] == []  # the failed check's evidence, relative to the report
    assert seen["console"] == []


def test_a_broken_evidence_link_is_reported(chrome: Any, tmp_path: Path) -> None:
    seen = look(chrome, written(tmp_path, records(evidence="evidence/gone")))
    assert seen["missing"] and all(href.endswith("evidence/gone") for href in seen["missing"])


def test_a_console_error_is_seen(chrome: Any, tmp_path: Path) -> None:
    page = written(tmp_path, records())
    page.write_text(page.read_text().replace("</body>", "<script>undefinedFunction()</script></body>"))
    assert any("undefinedFunction" in e["message"] for e in look(chrome, page)["console"])


def test_a_report_without_graphviz_diagrams_counts_none(chrome: Any, tmp_path: Path) -> None:
    page = written(tmp_path, records())
    text, drawn = re.subn(r'(<div class="diagram"[^>]*>)<svg.*?</svg>', r"\1", page.read_text(), flags=re.S)
    page.write_text(text)
    assert drawn == 3 and look(chrome, page)["diagrams"] == 0


def test_the_first_screen_screenshot(tmp_path: Path) -> None:
    out = tmp_path / "first-screen.png"
    entries = browser.screenshot(written(tmp_path, records()), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert [e for e in entries if e.get("level") == "SEVERE"] == []


def timeline_records() -> list[dict[str, Any]]:
    """records() plus a router death whose details carry a delivery timeline (212 lost, re-dialled)."""
    from harness import timeline_chart
    from tests.unit.test_timeline_chart import client_result

    (death,) = [r for r in records() if r["check"] == "logs" and r["cell"] == "http-upgrade-nginx"]
    return [*records(), {**death, "check": "router_death", "details": timeline_chart.details(client_result())}]


def test_a_delivery_timeline_renders_its_gap_without_console_errors(chrome: Any, tmp_path: Path) -> None:
    seen = look(chrome, written(tmp_path, timeline_records()))
    (timeline,) = seen["timelines"]
    assert timeline["dots"] > 100 and timeline["bands"] == 1 and timeline["labels"] == ["1.2 s, 212 lost"]
    assert seen["console"] == []


def test_a_report_without_the_timeline_svg_counts_none(chrome: Any, tmp_path: Path) -> None:
    """Negative control: with the chart's SVG cut out, the browser check finds no timeline."""
    page = written(tmp_path, timeline_records())
    text, cut = re.subn(r'<svg class="chart timeline".*?</svg>', "", page.read_text(), flags=re.S)
    page.write_text(text)
    assert cut == 1 and look(chrome, page)["timelines"] == []
