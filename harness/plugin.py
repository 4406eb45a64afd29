"""pytest plugin: options, matrix cells, one live deployment per xdist worker, evidence on failure.

A scenario test asks for the ``deployment`` fixture and says which cells it runs in, either with
``@pytest.mark.matrix`` (every topology x every LB under test that can run it) or with
``@pytest.mark.topology(name, driver=None, tc=None, lb_idle=None)`` (``driver=None``: every LB
under test, ``--lb``). The plugin parametrizes the test over those cells and groups each cell's
tests on one worker (``xdist_group``), so a cell is brought up once, not once per test.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # harness.reaper replaces Ryuk

from harness import drivers as driver_registry  # noqa: E402
from harness import topology as topology_registry  # noqa: E402
from harness import report as report_writer  # noqa: E402
from harness import verdicts  # noqa: E402
from harness.deployment import Deployment  # noqa: E402
from harness.errors import HarnessError  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "CF WebSocket LB harness")
    group.addoption("--lb", default=os.environ.get("HARNESS_LB", ""),
                    help="comma-separated LB drivers under test (default: every driver)")
    group.addoption("--topology", default="", help="comma-separated topologies to run (default: all)")
    group.addoption("--driver-dir", action="append", default=[], type=Path,
                    help="extra folder of LB driver files (a vendor's driver); may repeat")
    group.addoption("--customer-config", type=Path, default=None,
                    help="a customer's nginx.conf or haproxy.cfg, run as LB driver 'customer'")
    group.addoption("--pcap", choices=("failed", "all", "none"), default="failed",
                    help="pcaps of the client and routers per scenario: for failed ones (default), all, none")
    group.addoption("--external-lb", default=None, metavar="ADDRESS",
                    help="your own LB at ADDRESS, as driver 'external': routers are published on fixed host "
                         "ports (HARNESS_ROUTER_PORT_BASE, HARNESS_PUBLISH_ADDRESS); see README")
    group.addoption("--results-dir", default=RESULTS, type=Path, help="where evidence and reports go")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "topology(name, driver=None, tc=None, lb_idle=None, faults=()): cells a "
                                       "scenario runs in")
    config.addinivalue_line("markers", "matrix: run in every topology x LB cell")
    config.addinivalue_line("markers", "scenario: needs Docker; brings up containers")
    drivers = driver_registry.load_all(*config.getoption("--driver-dir"))
    if address := config.getoption("--external-lb"):
        drivers["external"] = driver_registry.Driver.external_lb(address)
        config.option.lb = config.getoption("--lb") or "external"
    if customer := config.getoption("--customer-config"):
        from harness.customer import driver_from_config

        drivers["customer"] = driver_from_config(customer)
        config.option.lb = config.getoption("--lb") or "customer"
    if not config.getoption("--lb"):
        config.option.lb = ",".join(sorted(drivers))
    unknown = [lb for lb in _csv(config.getoption("--lb")) if lb not in drivers]
    if unknown:
        raise pytest.UsageError(f"--lb {','.join(unknown)}: no such driver; known: {', '.join(sorted(drivers))} "
                                "(add one with --driver-dir)")
    config.stash[DRIVERS] = drivers
    _CONFIG[:] = [config]
    if not hasattr(config, "workerinput"):  # controller only: once per run
        _reap_leftovers()


DRIVERS = pytest.StashKey[dict[str, driver_registry.Driver]]()


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _reap_leftovers() -> None:
    try:
        from harness import reaper

        dead = reaper.reap()
    except Exception as exc:  # no engine: scenario tests will say so themselves
        print(f"[harness] reaper skipped: {exc}", file=sys.stderr)
        return
    if dead.containers or dead.networks:
        print(f"[harness] reaped leftovers of dead runs: {len(dead.containers)} containers, "
              f"{len(dead.networks)} networks", file=sys.stderr)


@dataclass(frozen=True)
class Cell:
    """One matrix cell: a topology bound to LB drivers, plus Traffic Controller timing overrides."""

    topology: str
    driver: str
    tc: tuple[tuple[str, str], ...] = ()
    lb_idle: float | None = None  # override every LB's idle timeout (seconds)
    faults: tuple[str, ...] = ()  # links behind a fault proxy

    @property
    def id(self) -> str:
        suffix = "".join(f"-{k.lower().removeprefix('tc_')}{v}" for k, v in self.tc)
        suffix += f"-lbidle{self.lb_idle:g}" if self.lb_idle else ""
        suffix += "".join(f"-fault-{link}" for link in self.faults)
        return f"{self.topology}-{self.driver}{suffix}".replace("_", "-")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "deployment" not in metafunc.fixturenames:
        return
    drivers = metafunc.config.stash[DRIVERS]
    topologies = topology_registry.load_all()
    under_test = _csv(metafunc.config.getoption("--lb"))
    cells: list[Cell] = []
    if metafunc.definition.get_closest_marker("matrix"):
        cells = [Cell(t, d) for t in topologies for d in under_test if drivers[d].supports(topologies[t]) is None]
    elif markers := ([m for m in metafunc.definition.own_markers if m.name == "topology"]
                     or list(metafunc.definition.iter_markers("topology"))):
        for marker in markers:  # several marks: the union of their cells; a test's own marks win
            name = marker.args[0]
            if name not in topologies:
                raise pytest.UsageError(f"{metafunc.definition.nodeid}: topology '{name}' not in topologies/")
            fixed = marker.kwargs.get("driver")
            candidates = [fixed] if fixed else under_test
            tc = tuple(sorted((marker.kwargs.get("tc") or {}).items()))
            faults = tuple(marker.kwargs.get("faults") or ())
            cells += [Cell(name, d, tc, marker.kwargs.get("lb_idle"), faults) for d in candidates
                      if d in drivers and (fixed or drivers[d].supports(topologies[name]) is None)]
    else:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: uses 'deployment' without a matrix/topology mark")
    params = [pytest.param(c, id=c.id, marks=[pytest.mark.xdist_group(c.id), pytest.mark.scenario]) for c in cells]
    metafunc.parametrize("deployment", params, indirect=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = set(_csv(config.getoption("--topology")))
    keep, drop = [], []
    for item in items:
        cell = getattr(item, "callspec", None) and item.callspec.params.get("deployment")
        if isinstance(cell, Cell):
            if wanted and cell.topology not in wanted:
                drop.append(item)
                continue
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@dataclass
class CellManager:
    """Keeps one deployment alive per worker and swaps it when a test needs another cell."""

    drivers: dict[str, driver_registry.Driver]
    results_dir: Path | None = None
    active: tuple[Cell, Deployment] | None = None
    failures: dict[Cell, BaseException] = field(default_factory=dict)

    def get(self, cell: Cell) -> Deployment:
        if self.active and self.active[0] == cell:
            return self.active[1]
        self.close()
        if cell in self.failures:  # don't retry a cell that failed to start for every test in it
            raise self.failures[cell]
        topo = topology_registry.load_all()[cell.topology].with_driver(cell.driver)
        if cell.lb_idle:
            topo = topo.with_idle_timeout(cell.lb_idle)
        deployment = _CellDeployment(topo, self.drivers, tc=dict(cell.tc), faults=cell.faults,
                                     results_dir=self.results_dir)
        try:
            deployment.__enter__()
        except HarnessError as exc:
            self.failures[cell] = exc
            raise
        self.active = (cell, deployment)
        return deployment

    def close(self) -> None:
        if self.active:
            self.active[1].stop()
            self.active = None


class _CellDeployment(Deployment):
    def __init__(self, *args: Any, tc: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tc = tc

    def tc_env(self) -> dict[str, str]:
        return dict(self._tc)


@pytest.fixture(scope="session")
def cells(pytestconfig: pytest.Config) -> Iterator[CellManager]:
    manager = CellManager(pytestconfig.stash[DRIVERS], pytestconfig.getoption("--results-dir"))
    yield manager
    manager.close()


@pytest.fixture
def deployment(request: pytest.FixtureRequest, cells: CellManager) -> Deployment:
    dep = cells.get(request.param)
    if request.config.getoption("--pcap") != "none":
        for node in ("client", *(f"router-{i}" for i in range(dep.topology.router_count))):
            dep.probe(node)
    request.node.stash[DEPLOYMENT] = dep
    request.node.stash[CELL] = request.param
    request.node.stash[STARTED_AT] = time.time()
    return dep


STARTED_AT = pytest.StashKey[float]()


CELL = pytest.StashKey[Cell]()


@pytest.fixture
def verdict(request: pytest.FixtureRequest, deployment: Deployment) -> Callable[..., None]:
    """``verdict(check, observed, column=None, **details)``: record the check for the report, then
    assert it (``column``: the report column when one check runs in several cell variants).

    The expected outcome comes from ``harness.verdicts.expected`` (the seed's rules), so an
    expected failure passes only when it fails in exactly the predicted way.
    """
    cell: Cell = request.node.stash[CELL]
    interval = float(dict(cell.tc).get("TC_KEEPALIVE_INTERVAL", 15))
    expectations = verdicts.expected(deployment.topology, deployment.drivers, keepalive_interval=interval)

    def check(name: str, observed: str, *, column: str | None = None, **details: Any) -> None:
        exp = expectations[name]
        record = {"cell": f"{cell.topology}-{cell.driver}", "variant": cell.id, "topology": cell.topology,
                  "driver": cell.driver, "check": column or name,
                  "expected": exp.outcome, "because": exp.because, "observed": observed,
                  "diagnosis": verdicts.diagnosis(observed), "ok": observed == exp.outcome, "details": details,
                  "environment": deployment.environment()}
        request.node.user_properties.append(("harness_check", record))
        assert observed == exp.outcome, (f"{name}: expected '{exp.outcome}' ({exp.because}) but observed "
                                         f"'{observed}': {verdicts.diagnosis(observed)}; details: {details}")

    return check


DEPLOYMENT = pytest.StashKey[Deployment]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    dep = item.stash.get(DEPLOYMENT, None)
    keep_all = item.config.getoption("--pcap") == "all"
    if report.when != "call" or dep is None or not (report.failed or keep_all):
        return
    folder = item.config.getoption("--results-dir") / "evidence" / re.sub(r"[^\w.-]+", "_", item.nodeid)
    try:
        files = dep.collect(folder, since=item.stash.get(STARTED_AT, None), until=time.time())
    except Exception as exc:
        report.sections.append(("harness evidence", f"could not collect evidence: {exc}"))
        return
    report.user_properties.append(("harness_evidence", str(folder)))
    tails = "\n".join(f"--- {p.name} (last 40 lines) ---\n" + "\n".join(p.read_text().splitlines()[-40:])
                      for p in files if p.suffix == ".log")
    report.sections.append(("harness evidence", f"written to {folder}\n{tails}"))


# ---- the report: records come from every worker through the reports' user_properties -------------

RECORDS = pytest.StashKey[list[dict[str, Any]]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[RECORDS] = []
    session.config.stash[STARTED] = time.monotonic()


STARTED = pytest.StashKey[float]()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    props = dict(report.user_properties)
    record = props.get("harness_check")
    if record is None or report.when != "call":
        return
    record = dict(record)
    record["evidence"] = props.get("harness_evidence")
    if report.failed and record["ok"]:  # the check passed, something after it failed
        record["ok"] = False
        record["observed"] = f"test failed after the check: {report.longreprtext.splitlines()[-1][:200]}"
    config = _config_of(report)
    if config is not None:
        config.stash[RECORDS].append(record)


_CONFIG: list[pytest.Config] = []


def _config_of(report: pytest.TestReport) -> pytest.Config | None:
    return _CONFIG[0] if _CONFIG else None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or not config.stash.get(RECORDS, None):
        return
    files = report_writer.write(config.stash[RECORDS], config.getoption("--results-dir"),
                                topology_registry.load_all(), time.monotonic() - config.stash[STARTED])
    config.stash[REPORT_FILES] = files


REPORT_FILES = pytest.StashKey[list[Path]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    records = config.stash.get(RECORDS, None)
    if not records:
        return
    terminalreporter.section("CF WebSocket LB matrix")
    terminalreporter.write_line(report_writer.to_terminal(report_writer.group(records)))
    for path in config.stash.get(REPORT_FILES, []):
        terminalreporter.write_line(f"report: {path}")
