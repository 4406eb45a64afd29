"""pytest plugin: options, matrix cells, one live deployment per xdist worker, evidence on failure.

A scenario test asks for the ``deployment`` fixture and says which topology it needs with
``@pytest.mark.topology(name, driver=None, tc=None)``. ``driver=None`` means "every LB under test"
(``--lb``); the plugin parametrizes the test over those cells and groups each cell's tests on one
worker (``xdist_group``), so a cell is brought up once per worker, not once per test.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # harness.reaper replaces Ryuk

from harness import drivers as driver_registry  # noqa: E402
from harness import topology as topology_registry  # noqa: E402
from harness.deployment import Deployment  # noqa: E402
from harness.errors import HarnessError  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "CF WebSocket LB harness")
    group.addoption("--lb", default=os.environ.get("HARNESS_LB", "nginx"),
                    help="comma-separated LB drivers under test (default: nginx)")
    group.addoption("--topology", default="", help="comma-separated topologies to run (default: all)")
    group.addoption("--driver-dir", action="append", default=[], type=Path,
                    help="extra folder of LB driver files (a vendor's driver); may repeat")
    group.addoption("--results-dir", default=RESULTS, type=Path, help="where evidence and reports go")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "topology(name, driver=None, tc=None): the cell a scenario runs in")
    config.addinivalue_line("markers", "scenario: needs Docker; brings up containers")
    drivers = driver_registry.load_all(*config.getoption("--driver-dir"))
    unknown = [lb for lb in _csv(config.getoption("--lb")) if lb not in drivers]
    if unknown:
        raise pytest.UsageError(f"--lb {','.join(unknown)}: no such driver; known: {', '.join(sorted(drivers))} "
                                "(add one with --driver-dir)")
    config.stash[DRIVERS] = drivers
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

    @property
    def id(self) -> str:
        suffix = "".join(f"-{k.lower().removeprefix('tc_')}{v}" for k, v in self.tc)
        return f"{self.topology}-{self.driver}{suffix}".replace("_", "-")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "deployment" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("topology")
    if marker is None:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: uses 'deployment' without @pytest.mark.topology")
    name = marker.args[0]
    topologies = topology_registry.load_all()
    if name not in topologies:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: topology '{name}' not in topologies/")
    fixed = marker.kwargs.get("driver")
    drivers = [fixed] if fixed else _csv(metafunc.config.getoption("--lb"))
    tc = tuple(sorted((marker.kwargs.get("tc") or {}).items()))
    cells = [Cell(name, d, tc) for d in drivers]
    metafunc.parametrize("deployment", cells, ids=[c.id for c in cells], indirect=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = set(_csv(config.getoption("--topology")))
    keep, drop = [], []
    for item in items:
        cell = getattr(item, "callspec", None) and item.callspec.params.get("deployment")
        if isinstance(cell, Cell):
            item.add_marker(pytest.mark.xdist_group(cell.id))
            item.add_marker(pytest.mark.scenario)
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
    active: tuple[Cell, Deployment] | None = None
    failures: dict[Cell, BaseException] = field(default_factory=dict)

    def get(self, cell: Cell) -> Deployment:
        if self.active and self.active[0] == cell:
            return self.active[1]
        self.close()
        if cell in self.failures:  # don't retry a cell that failed to start for every test in it
            raise self.failures[cell]
        topo = topology_registry.load_all()[cell.topology].with_driver(cell.driver)
        deployment = _CellDeployment(topo, self.drivers, tc=dict(cell.tc))
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
    manager = CellManager(pytestconfig.stash[DRIVERS])
    yield manager
    manager.close()


@pytest.fixture
def deployment(request: pytest.FixtureRequest, cells: CellManager) -> Deployment:
    dep = cells.get(request.param)
    request.node.stash[DEPLOYMENT] = dep
    return dep


DEPLOYMENT = pytest.StashKey[Deployment]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    dep = item.stash.get(DEPLOYMENT, None)
    if report.when != "call" or not report.failed or dep is None:
        return
    folder = item.config.getoption("--results-dir") / "evidence" / re.sub(r"[^\w.-]+", "_", item.nodeid)
    try:
        files = dep.collect(folder)
    except Exception as exc:
        report.sections.append(("harness evidence", f"could not collect evidence: {exc}"))
        return
    tails = "\n".join(f"--- {p.name} (last 40 lines) ---\n" + "\n".join(p.read_text().splitlines()[-40:])
                      for p in files if p.suffix == ".log")
    report.sections.append(("harness evidence", f"written to {folder}\n{tails}"))
