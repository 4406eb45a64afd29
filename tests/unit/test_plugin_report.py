"""Nothing vanishes in the report: every collected (cell, check) is a visible cell with a status,
counted in the summary line and the exit status; each run writes into a fresh folder.

The scenario tests here run in a subprocess with ``deployment`` and ``verdict`` replaced by stand-ins
(no Docker): the plugin still parametrizes them over cells, as it does the real suite.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
#: each case is a pytest run in a subprocess: out early, not at the end of an xdist run
pytestmark = pytest.mark.waits(15)

# A cell "starts" unless its driver is haproxy; verdict() records like the real fixture does.
STAND_INS = '''
import pytest
from harness import plugin


class FakeDeployment:
    def collect(self, folder, since=None, until=None):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "router-0.log").write_text("GET /apps/x/stream 101\\n")
        return [folder / "router-0.log"]


@pytest.fixture
def deployment(request):
    cell = request.param
    if cell.driver == "haproxy":
        raise RuntimeError("cell did not start: haproxy exited 1\\nlast logs ...")
    request.node.stash[plugin.DEPLOYMENT] = FakeDeployment()
    return cell


@pytest.fixture
def verdict(request, deployment):
    def check(name, observed, *, expected="pass", detail=""):
        request.node.user_properties.append(("harness_check", {
            "cell": f"{deployment.topology}-{deployment.driver}", "variant": deployment.id,
            "topology": deployment.topology, "driver": deployment.driver, "check": name, "expected": expected,
            "because": "the seed says so", "observed": observed, "detail": detail, "attempt": "a1",
            "diagnosis": f"why {observed}", "ok": observed == expected, "details": {}, "environment": {}}))
        assert observed in (expected, "not_applicable"), f"{name}: expected {expected}, saw {observed}"
    return check
'''

SCENARIOS = '''
import pytest

pytestmark = pytest.mark.topology("http-upgrade")


@pytest.mark.check("logs")
def test_logs(deployment, verdict):
    verdict("logs", "pass")


@pytest.mark.check("firehose")
def test_firehose_crashes(deployment, verdict):
    raise ConnectionResetError("peer went away")


@pytest.mark.check("kernel_delay")
def test_netem_skips(deployment, verdict):
    pytest.skip("kernel lacks sch_netem (CONFIG_NET_SCH_NETEM)")


@pytest.mark.check("xff")
def test_xff_not_applicable(deployment, verdict):
    verdict("xff", "not_applicable", detail="the cell has no HTTP listener for the echo app")


def test_xfp_unmarked_crash(deployment, verdict):
    assert 1 == 2, "xfp probe broke"
'''


@pytest.fixture(autouse=True)
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    for var in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "HARNESS_LB"):
        monkeypatch.delenv(var, raising=False)


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, Path]:
    """The run's result and the folder it made (the one new under runs/: two runs in one second are
    named by the same second and a random suffix, so the last by name is not always the last made)."""
    runs = pytester.path / "results" / "runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--results-dir", "results", *args)
    (made,) = set(runs.iterdir()) - before
    return result, made


def records_by_key(run_dir: Path) -> dict[tuple[str, str], dict[str, object]]:
    data = json.loads((run_dir / "report.json").read_text())
    return {(r["cell"], r["check"]): r for r in data["records"]}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_crashed_skipped_and_not_applicable_checks_are_cells_of_the_report(pytester: pytest.Pytester,
                                                                           workers: list[str]) -> None:
    pytester.makeconftest(STAND_INS)
    pytester.makepyfile(test_scenarios=SCENARIOS)
    result, run_dir = run(pytester, "--lb", "nginx,haproxy", *workers)
    assert result.ret == pytest.ExitCode.TESTS_FAILED

    records = records_by_key(run_dir)
    assert len(records) == 10  # 5 checks x 2 cells: none vanished
    nginx = {check: rec for (cell, check), rec in records.items() if cell == "http-upgrade-nginx"}
    assert {c: r["status"] for c, r in nginx.items()} == {
        "logs": "pass", "firehose": "error", "kernel_delay": "skipped", "xff": "n/a",
        "test_xfp_unmarked_crash": "error"}
    assert nginx["firehose"]["detail"] == "ConnectionResetError: peer went away"
    assert nginx["firehose"]["expected"] == "pass"  # the seed's prediction for the cell, all the same
    assert nginx["kernel_delay"]["detail"] == "kernel lacks sch_netem (CONFIG_NET_SCH_NETEM)"
    assert nginx["firehose"]["evidence"] == "evidence/test_scenarios.py_test_firehose_crashes_http-upgrade-nginx_"
    assert (run_dir / nginx["firehose"]["evidence"] / "router-0.log").is_file()  # relative to the report
    haproxy = {check: rec for (cell, check), rec in records.items() if cell == "http-upgrade-haproxy"}
    assert {r["status"] for r in haproxy.values()} == {"error"}
    assert haproxy["logs"]["detail"] == "setup failed: RuntimeError: cell did not start: haproxy exited 1"

    summary = ("2 cells, 10 checks: 1 pass, 0 fail as predicted, 0 mismatch, 7 error, 1 skipped, 1 n/a")
    assert any(line.startswith(summary) for line in result.outlines), result.stdout.str()
    md = (run_dir / "report.md").read_text()
    html = (run_dir / "report.html").read_text()
    for text in (md, html):
        assert summary in text
        assert "ERROR: ConnectionResetError: peer went away" in text
        assert "skipped: kernel lacks sch_netem (CONFIG_NET_SCH_NETEM)" in text
        assert "n/a: the cell has no HTTP listener for the echo app" in text
        assert "ERROR: setup failed: RuntimeError: cell did not start: haproxy exited 1" in text
    assert 'class="error"' in html and 'class="skipped"' in html and 'class="na"' in html
    assert 'href="evidence/test_scenarios.py_test_firehose_crashes_http-upgrade-nginx_"' in html
    assert (run_dir / "junit.xml").is_file()  # JUnit goes into the run folder too


def test_mismatch_without_a_failing_test_still_fails_the_run(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(STAND_INS)
    pytester.makepyfile(test_scenarios='''
import pytest


@pytest.mark.topology("http-upgrade", driver="nginx")
@pytest.mark.check("logs")
def test_logs_records_a_mismatch_but_passes(deployment, request):
    request.node.user_properties.append(("harness_check", {
        "cell": "http-upgrade-nginx", "variant": deployment.id, "topology": "http-upgrade", "driver": "nginx",
        "check": "logs", "expected": "pass", "because": "b", "observed": "upgrade_stripped", "detail": "",
        "diagnosis": "d", "ok": False, "details": {}, "environment": {}}))
''')
    result, run_dir = run(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["1 cells, 1 checks: 0 pass, 0 fail as predicted, 1 mismatch, 0 error, *",
                                 "exit status 1: the report holds a mismatch or error that no failed test shows",
                                 "*1 passed*"])
    assert records_by_key(run_dir)[("http-upgrade-nginx", "logs")]["status"] == "mismatch"


def test_every_run_gets_a_fresh_folder_and_a_report_even_with_no_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_nothing_to_do_with_cells():\n    pass\n")
    first_result, first = run(pytester)
    second_result, second = run(pytester, "-k", "no_such_test")
    assert first_result.ret == pytest.ExitCode.OK and second_result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert first != second and first.parent == second.parent == pytester.path / "results" / "runs"
    assert sorted(p.name for p in second.iterdir()) == ["junit.xml", "report.html", "report.json", "report.md"]
    latest = pytester.path / "results" / "latest"
    assert latest.is_symlink() and os.readlink(latest) == f"runs/{second.name}"
    data = json.loads((latest / "report.json").read_text())
    assert data["records"] == [] and data["meta"]["summary"].startswith("0 cells, 0 checks: 0 pass")
    assert "nothing was collected" in data["meta"]["note"]
    assert "is a check in a matrix cell" in json.loads((first / "report.json").read_text())["meta"]["note"]
    second_result.stdout.fnmatch_lines(["0 cells, 0 checks: *(nothing was collected*", f"report: {second}/report.json"])


def test_junitxml_given_by_the_user_wins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    result, run_dir = run(pytester, "--junitxml", "mine.xml")
    assert result.ret == pytest.ExitCode.OK
    assert (pytester.path / "mine.xml").is_file() and not (run_dir / "junit.xml").exists()


def test_a_failure_after_a_held_check_and_a_failed_teardown_are_errors(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(STAND_INS)
    pytester.makepyfile(test_scenarios='''
import pytest

pytestmark = pytest.mark.topology("http-upgrade", driver="nginx")


@pytest.fixture
def leaky():
    yield
    raise OSError("network still has endpoints")


@pytest.mark.check("logs")
def test_logs_then_crash(deployment, verdict):
    verdict("logs", "pass")
    raise TimeoutError("emitter never stopped")


@pytest.mark.check("firehose")
def test_firehose_then_teardown_fails(deployment, verdict, leaky):
    verdict("firehose", "pass")
''')
    result, run_dir = run(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    records = records_by_key(run_dir)
    logs, firehose = records[("http-upgrade-nginx", "logs")], records[("http-upgrade-nginx", "firehose")]
    assert (logs["status"], logs["detail"]) == ("error", "test failed after the check: TimeoutError: emitter never "
                                                         "stopped")
    assert (firehose["status"], firehose["detail"]) == ("error", "teardown failed: OSError: network still has "
                                                                 "endpoints")
    assert len(records) == 2
