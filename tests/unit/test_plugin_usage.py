"""Bad input stops the run before anything starts: one ``ERROR:`` line (a pytest usage error, exit
code 4) naming the option or file, the field and the fix; no traceback, no run folder, no reaper.

Each case runs pytest in a subprocess, as a user would, from a folder without this repository's
conftest.py: the plugin comes from its ``pytest11`` entry point. ``DOCKER_HOST`` points nowhere, so
the reaper (the first thing that talks to Docker) would print "[harness] reaper skipped" had it run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
#: each case is a pytest run in a subprocess: out early, not at the end of an xdist run
pytestmark = pytest.mark.waits(15)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    for var in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "HARNESS_LB"):
        monkeypatch.delenv(var, raising=False)


def assert_one_line_usage_error(result: pytest.RunResult, *fragments: str) -> str:
    """Exit code 4, exactly one non-blank stderr line ``ERROR: ...`` holding every fragment, and
    nothing that looks like a traceback, a worker or the reaper anywhere."""
    errors = [line for line in result.errlines if line.strip()]
    text = "\n".join(result.outlines + result.errlines)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert len(errors) == 1 and errors[0].startswith("ERROR: "), text
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    for noise in ("Traceback", "INTERNALERROR", "unrecognized arguments", "[harness] reaper", "collected"):
        assert noise not in text, (noise, text)
    return errors[0]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    results = pytester.path / "results"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--results-dir", str(results), *args)
    assert not results.exists(), "a run folder was made before the input was checked"
    return result


def driver_folder(folder: Path, template: str | None = "acme.cfg.j2") -> Path:
    folder.mkdir()
    (folder / "acme.yaml").write_text(f"name: acme-lb\nimage: haproxy\ntemplate: acme.cfg.j2\n"
                                      "protocols: [http, tcp]\npasses_upgrade: true\n")
    if template:
        (folder / template).write_text((ROOT / "topologies/drivers/haproxy.cfg.j2").read_text())
    return folder


def test_topology_file_with_a_bad_field(pytester: pytest.Pytester) -> None:
    topologies = pytester.mkdir("topologies")
    (topologies / "broken.yaml").write_text(
        "name: broken\nstrategy: s\nlogger_endpoint: {scheme: wss, port: 443}\n"
        "load_balancers: [{name: lb, listeners: [{port: 443, protocol: udp}]}]\n")
    # The repository's topologies/ folder, swapped for one holding the broken file.
    script = ("import sys, pytest, harness.topology as t; t.TOPOLOGIES_DIR = t.Path(sys.argv[1]); "
              "sys.exit(pytest.main(sys.argv[2:]))")
    results = pytester.path / "results"
    result = pytester.run(sys.executable, "-c", script, str(topologies), "-p", "no:cacheprovider",
                          "--results-dir", str(results))
    assert_one_line_usage_error(result, "broken.yaml", "field 'load_balancers[0].listeners[0].protocol'",
                                "'udp' is not allowed", "fix: use one of: http, tcp")
    assert not results.exists()


def test_unknown_lb(pytester: pytest.Pytester) -> None:
    assert_one_line_usage_error(run(pytester, "--lb", "nginx,haprxy"), "--lb haprxy", "no such LB driver",
                                "did you mean 'haproxy'?", "nginx-no-upgrade")


def test_driver_with_a_missing_template(pytester: pytest.Pytester) -> None:
    folder = driver_folder(pytester.path / "acme", template=None)
    assert_one_line_usage_error(run(pytester, "--driver-dir", str(folder)), "acme.yaml", "field 'template'",
                                "acme.cfg.j2 does not exist", "fix: name a template file beside the driver")


def test_driver_dir_that_does_not_exist(pytester: pytest.Pytester) -> None:
    assert_one_line_usage_error(run(pytester, "--driver-dir", "/nonexistent"), "--driver-dir /nonexistent",
                                "no such folder", "fix:")


def test_driver_dir_without_drivers(pytester: pytest.Pytester) -> None:
    assert_one_line_usage_error(run(pytester, "--driver-dir", str(pytester.mkdir("empty"))), "empty",
                                "no driver file (*.yaml)", "fix:")


def test_topology_typo_suggests_the_closest_name(pytester: pytest.Pytester) -> None:
    line = assert_one_line_usage_error(run(pytester, "--topology", "tcp-same-port,http-upgarde"),
                                       "--topology http-upgarde", "no such topology")
    assert "did you mean 'http-upgrade'?" in line and "tcp-alt-port-mismatch" in line


def test_missing_customer_config(pytester: pytest.Pytester) -> None:
    assert_one_line_usage_error(run(pytester, "--customer-config", "nginx.conf"), "--customer-config nginx.conf",
                                "no such file", "fix:")


def test_driver_dir_without_a_test_path_is_checked_too(pytester: pytest.Pytester) -> None:
    """``pytest --driver-dir DIR`` alone: DIR is not taken for a test path whose conftest lacks the option."""
    folder = driver_folder(pytester.path / "acme", template=None)
    assert_one_line_usage_error(run(pytester, "--driver-dir", str(folder)), "field 'template'")


def test_driver_dir_without_a_test_path_runs_from_the_repository(tmp_path: Path) -> None:
    """The measured failure: in the repository, ``pytest --driver-dir DIR`` said "unrecognized
    arguments". Now the option is known, and the vendor's driver joins the matrix."""
    folder = driver_folder(tmp_path / "acme")
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--driver-dir", str(folder),
                             "--lb", "acme-lb", "--collect-only", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tests/scenarios/test_matrix.py::test_logs[http-upgrade-acme-lb]" in result.stdout


def test_the_plugin_is_registered_once(tmp_path: Path) -> None:
    """From the repository: the entry point and conftest.py name the same plugin, loaded once."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--trace-config",
                             "--collect-only", "-q", "tests/unit/test_report.py"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PLUGIN registered: <module 'harness.plugin'") == 1, result.stdout


def test_customer_config_roles_are_checked(pytester: pytest.Pytester) -> None:
    conf = pytester.path / "nginx.conf"
    conf.write_text("events {}\nhttp { server { listen 80; location / { proxy_pass http://10.0.0.1; } } }\n")
    assert_one_line_usage_error(run(pytester, "--customer-config", f"api={conf}"), "unknown role 'api'", "fix:")
    assert_one_line_usage_error(run(pytester, "--customer-config", f"doppler={conf}"), "no main LB", "fix:")


def test_customer_config_needs_no_topology_and_gets_no_lb_idle_variants(tmp_path: Path) -> None:
    """The cell comes from the config's listeners; the artificial lb_idle variants (which cannot
    change a customer's timeouts) are not collected for it, the measured idle cut is."""
    conf = ROOT / "tests/customer_configs/nginx-80-only.conf"
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--customer-config", str(conf),
                             "--collect-only", "-q", "tests/scenarios/test_matrix.py",
                             "tests/scenarios/test_idle_timeout.py", "tests/scenarios/test_idle_measured.py"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_matrix.py::test_logs[customer-customer]" in result.stdout
    assert "test_idle_measured.py::test_idle_cut_measured_at_real_timing[customer-customer-keepalive-interval100000]" \
        in result.stdout
    assert "lbidle" not in result.stdout and "http-upgrade-" not in result.stdout


@pytest.mark.parametrize("lb, collected", [("nginx", []), ("caddy-read-timeout", [
    "test_idle_cut_measured_at_real_timing[http-upgrade-caddy-read-timeout-keepalive-interval100000]"])])
def test_a_deployment_test_without_a_cell_in_the_run_is_deselected_not_skipped(lb: str, collected: list[str]) -> None:
    """The measured idle cut has no cell with LBs whose timeout the harness sets: it is not in the
    run at all (pytest's own "got empty parameter set" skip read as a test that did not run)."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--lb", lb, "--collect-only",
                             "-q", "tests/scenarios/test_idle_measured.py"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode in (0, pytest.ExitCode.NO_TESTS_COLLECTED), result.stdout + result.stderr
    assert "1 deselected" in result.stdout if not collected else "deselected" not in result.stdout, result.stdout
    assert all(name in result.stdout for name in collected) and "NOTSET" not in result.stdout, result.stdout
