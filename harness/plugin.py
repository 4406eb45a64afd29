"""pytest plugin: options, matrix cells, one live deployment per xdist worker, evidence on failure.

A scenario test asks for the ``deployment`` fixture and says which cells it runs in, either with
``@pytest.mark.matrix`` (every topology x every LB under test that can run it) or with
``@pytest.mark.topology(name, driver=None, tc=None, lb_idle=None)`` (``driver=None``: every LB
under test, ``--lb``). The plugin parametrizes the test over those cells and groups each cell's
tests on one worker (``xdist_group``), so a cell is brought up once, not once per test.

Bad input stops the run in ``pytest_configure``, before any container (or the reaper) starts:
unknown drivers or topologies, missing files and folders, invalid driver and topology files all end
in one ``pytest.UsageError`` line naming the option or file, the field and the fix. The plugin is the
``pytest11`` entry point ``harness.plugin`` (``pyproject.toml``), so its options work however pytest
is invoked; ``conftest.py`` names the same plugin, which pytest then loads once.

Every run writes into a fresh ``<--results-dir>/runs/<YYYYmmdd-HHMMSS>-<id>/`` (``latest`` points
to it): ``evidence/<test>/``, ``junit.xml`` (unless ``--junitxml`` says otherwise) and
``report.{json,md,html}``, which is written even when no check ran. A scenario test marked
``@pytest.mark.check(name, column=None)`` (or using ``verdict``) that errors or skips before recording
its verdict still gets its (cell, check) in the report, with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from harness.reaper import configure_testcontainers  # noqa: E402

configure_testcontainers()  # testcontainers' reaper is the harness's Ryuk image (harness.reaper)

from harness import drivers as driver_registry  # noqa: E402
from harness import topology as topology_registry  # noqa: E402
from harness import report as report_writer  # noqa: E402
from harness import reaper  # noqa: E402
from harness import verdicts  # noqa: E402
from harness.deployment import Deployment, Succession  # noqa: E402
from harness.errors import HarnessError, did_you_mean  # noqa: E402
from harness.topology import Topology  # noqa: E402
from harness.outcomes import Observation, Outcome  # noqa: E402
from harness.witness import Evidence  # noqa: E402
from harness import hops  # noqa: E402
from harness import progress  # noqa: E402
from harness import scheduling  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "CF WebSocket LB harness")
    group.addoption("--lb", default=os.environ.get("HARNESS_LB", ""),
                    help="comma-separated LB drivers under test (default: every driver)")
    group.addoption("--topology", default="", help="comma-separated topologies to run (default: all)")
    group.addoption("--driver-dir", action="append", default=[], type=Path,
                    help="extra folder of LB driver files (a vendor's driver); may repeat")
    group.addoption("--customer-config", action="append", default=[], metavar="[doppler=]FILE",
                    help="a customer's nginx.conf or haproxy.cfg, run as it is in a cell built from its listeners "
                         "(LB driver 'customer'); 'doppler=FILE' adds a dedicated WebSocket LB; see README")
    group.addoption("--pcap", choices=("failed", "all", "none"), default="failed",
                    help="pcaps of the client and routers per scenario: for failed ones (default), all, none")
    group.addoption("--external-lb", default=None, metavar="ADDRESS",
                    help="your own LB at ADDRESS, as driver 'external': routers are published on fixed host "
                         "ports (HARNESS_ROUTER_PORT_BASE, HARNESS_PUBLISH_ADDRESS); see README")
    group.addoption("--shard", default="", metavar="K/N",
                    help="run only the K-th of N deterministic parts of the cells (N CI runners; merge their "
                         "reports with python -m harness.report merge)")
    group.addoption("--results-dir", default=RESULTS, type=Path,
                    help="each run writes evidence, junit.xml and report.{json,md,html} into a fresh "
                         "DIR/runs/<time>-<id>/; DIR/latest points to the newest (default: results/)")


@pytest.hookimpl(tryfirst=True)  # before junitxml's, which reads config.option.xmlpath
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "topology(name, driver=None, tc=None, lb_idle=None, faults=()): cells a "
                                       "scenario runs in")
    config.addinivalue_line("markers", "matrix: run in every topology x LB cell")
    config.addinivalue_line("markers", "idle_measured(tc): cells whose LB idle cut the harness does not set "
                                       "(customer configs, drivers without honours_idle_timeout)")
    config.addinivalue_line("markers", "scenario: needs Docker; brings up containers")
    config.addinivalue_line("markers", "waits(seconds, group=None): the test mostly waits on timers for about "
                                       "this long (orders xdist's groups); with group, it runs in a group of its "
                                       "own, <cell>~<group> (harness.scheduling)")
    config.addinivalue_line("markers", "check(name, column=None): the check a scenario test records (report "
                                       "column: column, else name); shown even if the test errors or skips first")
    try:  # every bad input ends here, as one line, before the reaper or any container starts
        drivers, topologies = _validated(config)
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[DRIVERS] = drivers
    config.stash[TOPOLOGIES] = topologies
    if hasattr(config.option, "loadscopereorder"):  # xdist: groups go out in our order (longest first)
        config.option.loadscopereorder = False
    if hasattr(config, "workerinput"):  # an xdist worker writes into the run folder its controller made
        if RUN_DIR_KEY in config.workerinput:
            config.stash[RUN_DIR] = Path(config.workerinput[RUN_DIR_KEY])
        if reaper.SHARED_KEY in config.workerinput:
            try:
                reaper.join_shared(*config.workerinput[reaper.SHARED_KEY])
            except (OSError, HarnessError) as exc:  # testcontainers starts this worker's own instead
                print(f"[harness] the run's reaper did not take this worker ({exc}); starting its own",
                      file=sys.stderr)
        return
    if not _runs_tests(config):
        return
    run_dir = _new_run_dir(Path(config.getoption("--results-dir")))
    config.stash[RUN_DIR] = run_dir
    _tell_run_dir(run_dir)
    if hasattr(config.option, "xmlpath") and not config.option.xmlpath:
        config.option.xmlpath = str(run_dir / "junit.xml")
    config.pluginmanager.register(RunRecorder(config, run_dir), "harness-run-recorder")
    _reap_leftovers()  # controller only: once per run


def _validated(config: pytest.Config) -> tuple[dict[str, driver_registry.Driver], dict[str, Topology]]:
    """The drivers and topologies of this run, after checking every option that names a file, a
    folder, a driver or a topology. Raises ``pytest.UsageError`` (options) or ``HarnessError`` (files)."""
    shard_of(config)  # a malformed --shard stops the run here
    folders = [Path(f) for f in config.getoption("--driver-dir")]
    for folder in folders:
        if not folder.is_dir():
            raise pytest.UsageError(f"--driver-dir {folder}: no such folder; fix: name a folder holding "
                                    "<name>.yaml driver files and their templates")
        if not any(folder.glob("*.yaml")):
            raise pytest.UsageError(f"--driver-dir {folder}: no driver file (*.yaml) in it; fix: put <name>.yaml "
                                    "and its template there (README: Adding a load balancer)")
    drivers = driver_registry.load_all(*folders)
    address, customer = config.getoption("--external-lb"), config.getoption("--customer-config")
    if address and customer:
        raise pytest.UsageError("--external-lb and --customer-config: both replace the LB under test; fix: pass one")
    if address:
        drivers["external"] = driver_registry.Driver.external_lb(address)
        config.option.lb = config.getoption("--lb") or "external"
    topologies = topology_registry.load_all()
    if customer:
        from harness.customer.plugin import customer_cell

        customer_cell(config, customer, drivers, topologies)
    for topo in topologies.values():
        topology_registry.check_drivers(topo, drivers)
    if not config.getoption("--lb"):
        config.option.lb = ",".join(sorted(drivers))
        config.stash[LB_DEFAULTED] = True
    for lb in _csv(config.getoption("--lb")):
        if lb not in drivers:
            raise pytest.UsageError(f"--lb {lb}: no such LB driver; fix: {did_you_mean(lb, drivers)}use one of: "
                                    f"{', '.join(sorted(drivers))} (or add one with --driver-dir)")
    for name in _csv(config.getoption("--topology")):
        if name not in topologies:
            raise pytest.UsageError(f"--topology {name}: no such topology in {topology_registry.TOPOLOGIES_DIR}; "
                                    f"fix: {did_you_mean(name, topologies)}use one of: {', '.join(sorted(topologies))}")
    return drivers, topologies


def _runs_tests(config: pytest.Config) -> bool:
    """False for --help, --version, --collect-only, --fixtures, --markers: no run folder, no reaper."""
    return not any(getattr(config.option, flag, False) for flag in
                   ("help", "version", "collectonly", "showfixtures", "show_fixtures_per_test", "markers"))


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # before xdist's own (one per core)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: six workers per core. A cell's tests mostly wait on timers, sockets and other
    containers, not on this process's CPU. On 2 cores the qualification matrix took 445 s with 6
    workers (27 % idle) and 386 s with 9; once a take-over moved the client instead of starting
    one, 322 s with 8 (CPU idle in long stretches) and 292 s with 12 (99 % busy but for the tail);
    the whole suite 374 s with 12 (ci/test). ``HARNESS_WORKERS`` (or xdist's
    ``PYTEST_XDIST_AUTO_NUM_WORKERS``) overrides."""
    chosen = os.environ.get("HARNESS_WORKERS") or os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    return int(chosen) if chosen else 6 * (os.cpu_count() or 1)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` (the default here): groups dealt one test ahead (``scheduling.OneAhead``)."""
    return scheduling.OneAhead(config, log) if config.getvalue("dist") == "loadgroup" else None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist (controller side): every worker writes into this run's folder and registers with the
    controller's reaper (``harness.reaper.join_shared``)."""
    run_dir = node.config.stash.get(RUN_DIR, None)
    if run_dir is not None:
        node.workerinput[RUN_DIR_KEY] = str(run_dir)
        if shared := _shared_reaper(node.config):
            node.workerinput[reaper.SHARED_KEY] = shared


def _shared_reaper(config: pytest.Config) -> tuple[str, str] | None:
    """The controller's reaper (its address and image), started for the first worker; None (each
    worker then starts its own) when reapers are turned off or it cannot start here (no engine:
    unit tests still run)."""
    if SHARED_REAPER not in config.stash:
        try:
            image = reaper.ensure_reaper()
            address = reaper.shared_address() if image else None
            config.stash[SHARED_REAPER] = (address, image) if address else None
        except Exception as exc:
            print(f"[harness] no shared reaper ({exc}); each worker starts its own", file=sys.stderr)
            config.stash[SHARED_REAPER] = None
    return config.stash[SHARED_REAPER]


SHARED_REAPER = pytest.StashKey["tuple[str, str] | None"]()


RUN_DIR_KEY = "harness_run_dir"
RUN_DIR = pytest.StashKey[Path]()
TOPOLOGIES = pytest.StashKey[dict[str, Topology]]()
#: Finished runs kept under <results>/runs (older ones are removed at the end of a run).
KEEP_RUNS = int(os.environ.get("HARNESS_KEEP_RUNS", "20"))


def _new_run_dir(results: Path) -> Path:
    runs = results.resolve() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    run_dir = runs / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir()
    _point_latest(run_dir)
    return run_dir


def _tell_run_dir(run_dir: Path) -> None:
    """Write the run folder into the file ``HARNESS_RUN_DIR_FILE`` names (``ci/qualify``, ``ci/test``
    read it: exact even when other runs share the results folder). Only while that file is empty, so
    a pytest run nested in a test (pytester) does not take it over."""
    pointer = os.environ.get("HARNESS_RUN_DIR_FILE")
    if pointer and not (Path(pointer).exists() and Path(pointer).read_text().strip()):
        Path(pointer).write_text(f"{run_dir}\n")


def _point_latest(run_dir: Path) -> None:
    """``<results>/latest`` -> ``runs/<id>``: a relative symlink swapped atomically, or a text file
    holding that path where symlinks cannot be made."""
    results, target = run_dir.parent.parent, f"runs/{run_dir.name}"
    latest, tmp = results / "latest", results / f".latest-{uuid.uuid4().hex[:8]}"
    try:
        os.symlink(target, tmp, target_is_directory=True)
        os.replace(tmp, latest)
    except OSError:
        tmp.unlink(missing_ok=True)
        try:
            latest.write_text(target + "\n")
        except OSError as exc:
            print(f"[harness] could not point {latest} at {target}: {exc}", file=sys.stderr)


def _prune_runs(run_dir: Path, keep: int) -> None:
    """Remove finished runs (they hold a report) beyond the newest ``keep``; never a run still
    going (no report yet) nor this one."""
    finished = sorted(p for p in run_dir.parent.iterdir() if p.is_dir() and (p / "report.json").exists())
    for old in finished[:-keep] if keep > 0 else []:
        if old != run_dir:
            shutil.rmtree(old, ignore_errors=True)


DRIVERS = pytest.StashKey[dict[str, driver_registry.Driver]]()
LB_DEFAULTED = pytest.StashKey[bool]()  # --lb not given: drivers with default_topologies run only those


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
    topologies = metafunc.config.stash[TOPOLOGIES]
    under_test = _csv(metafunc.config.getoption("--lb"))
    cells: list[Cell] = []
    if metafunc.definition.get_closest_marker("matrix"):
        cells = [Cell(t, d) for t in topologies for d in under_test if drivers[d].supports(topologies[t]) is None]
    elif markers := ([m for m in metafunc.definition.own_markers if m.name == "topology"]
                     or list(metafunc.definition.iter_markers("topology"))):
        for marker in markers:  # several marks: the union of their cells; a test's own marks win
            name = marker.args[0]
            if name not in topologies:
                raise pytest.UsageError(f"{metafunc.definition.nodeid}: @pytest.mark.topology('{name}'): no such "
                                        f"topology; fix: {did_you_mean(name, topologies)}use one of: "
                                        f"{', '.join(sorted(topologies))}")
            fixed = marker.kwargs.get("driver")
            candidates = [fixed] if fixed else under_test
            tc = tuple(sorted((marker.kwargs.get("tc") or {}).items()))
            faults = tuple(marker.kwargs.get("faults") or ())
            cells += [Cell(name, d, tc, marker.kwargs.get("lb_idle"), faults) for d in candidates
                      if d in drivers and (fixed or drivers[d].supports(topologies[name]) is None)
                      and (not marker.kwargs.get("lb_idle") or drivers[d].honours_idle_timeout)]
    elif metafunc.definition.get_closest_marker("idle_measured"):
        from harness.customer.plugin import idle_measured_cells

        cells = idle_measured_cells(metafunc.definition.get_closest_marker("idle_measured"), topologies, drivers,
                                    under_test)
    else:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: uses 'deployment' without a matrix/topology mark")
    cells = [c for c in cells if _in_default_run(metafunc, drivers[c.driver], c)]
    params = [pytest.param(c, id=c.id, marks=[pytest.mark.xdist_group(c.id), pytest.mark.scenario]) for c in cells]
    metafunc.parametrize("deployment", params, indirect=True)


def _in_default_run(metafunc: pytest.Metafunc, driver: driver_registry.Driver, cell: Cell) -> bool:
    """Whether a cell joins this run. An lb_idle variant needs a driver whose template applies the
    override (else it would judge the LB's own timeout against the override's prediction); a driver
    with ``default_topologies`` joins a run that did not name it only on those topologies' matrix."""
    if cell.lb_idle and not driver.honours_idle_timeout:
        return False
    if driver.default_topologies is None or not metafunc.config.stash.get(LB_DEFAULTED, False):
        return True
    return bool(metafunc.definition.get_closest_marker("matrix")) and cell.topology in driver.default_topologies


def shard_of(config: pytest.Config) -> tuple[int, int] | None:
    """``--shard K/N`` as (K, N), None when not sharding."""
    value = config.getoption("--shard")
    if not value:
        return None
    k, _, n = value.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise pytest.UsageError(f"--shard {value}: not K/N with 1 <= K <= N; fix: e.g. --shard 1/2 and --shard 2/2 "
                                "on two runners")
    return int(k), int(n)


def in_shard(cell_ids: list[str], shard: tuple[int, int]) -> set[str]:
    """The cells of shard K of N: sorted cell ids dealt round-robin, so every runner computes the
    same split from the same collection and the parts differ in size by at most one cell."""
    k, n = shard
    return {cell_id for i, cell_id in enumerate(sorted(set(cell_ids))) if i % n == k - 1}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = set(_csv(config.getoption("--topology")))
    shard = shard_of(config)
    cells = {item.nodeid: cell for item in items if isinstance(cell := _cell_of(item), Cell)}
    mine = in_shard([c.id for c in cells.values() if not wanted or c.topology in wanted], shard) if shard else None
    keep, drop = [], []
    for item in items:
        cell = cells.get(item.nodeid)
        if cell is None and _without_cells(item):
            drop.append(item)  # no cell of this run is its kind (e.g. idle_measured with built-in LBs)
        elif cell is not None and ((wanted and cell.topology not in wanted) or (mine is not None and cell.id not in mine)):
            drop.append(item)
        elif cell is None and shard and shard[0] != 1:  # tests without a cell run on the first shard only
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    ordered = by_cell(keep, cells)
    # Under xdist (collection happens on the workers): long waits in groups of their own, longest first.
    items[:] = for_workers(ordered, cells) if hasattr(config, "workerinput") else ordered


def by_cell(items: list[pytest.Item], cells: dict[str, Cell]) -> list[pytest.Item]:
    """The tests of a cell next to each other, cells in order of first appearance (a stable sort):
    without it a run without xdist brings a cell up and down for every test."""
    first: dict[Cell | None, int] = {}
    for item in items:
        first.setdefault(cells.get(item.nodeid), len(first))
    return sorted(items, key=lambda item: first[cells.get(item.nodeid)])


def for_workers(items: list[pytest.Item], cells: dict[str, Cell]) -> list[pytest.Item]:
    """``items`` in the order xdist should hand out their groups (``harness.scheduling``); a test
    whose ``waits`` mark names a group gets that group instead of its cell's (the mark replaces the
    cell's: xdist joins the names of every ``xdist_group`` mark). A test without a cell keeps the
    ``xdist_group`` it names, and its group is weighed as one."""
    units = []
    for item in items:
        cell, mark, named = (cells.get(item.nodeid), item.get_closest_marker("waits"),
                             item.get_closest_marker("xdist_group"))
        group = (mark.kwargs.get("group") if mark else None) if cell else (named.args[0] if named else None)
        unit = scheduling.Unit(item.nodeid, cell.id if cell else None, float(mark.args[0]) if mark else None, group)
        if unit.group and cell:
            item.own_markers[:] = [m for m in item.own_markers if m.name != "xdist_group"]
            item.add_marker(pytest.mark.xdist_group(scheduling.group_of(unit)))
        units.append(unit)
    return [items[i] for i in scheduling.longest_first(units)]


@dataclass
class CellManager:
    """Keeps one deployment alive per worker and swaps it when a test needs another cell."""

    drivers: dict[str, driver_registry.Driver]
    results_dir: Path | None = None
    active: tuple[Cell, Deployment] | None = None
    failures: dict[Cell, BaseException] = field(default_factory=dict)
    topologies: dict[str, Topology] = field(default_factory=topology_registry.load_all)
    succession: Succession = field(default_factory=Succession)

    def get(self, cell: Cell) -> Deployment:
        """The cell's deployment: the running one, or a new one that takes over the previous cell's
        CF side where it would start it the same (``Succession``; ``HARNESS_SHARE_CF=0``: never)."""
        if self.active and self.active[0] == cell:
            return self.active[1]
        self.active = None
        if cell in self.failures:  # don't retry a cell that failed to start for every test in it
            self.succession.close()
            raise self.failures[cell]
        topo = self.topologies[cell.topology].with_driver(cell.driver)
        if cell.lb_idle:
            topo = topo.with_idle_timeout(cell.lb_idle)
        deployment = _CellDeployment(topo, self.drivers, tc=dict(cell.tc), faults=cell.faults,
                                     results_dir=self.results_dir)
        try:
            self.succession.enter(deployment)
        except HarnessError as exc:
            self.failures[cell] = exc
            raise
        self.active = (cell, deployment)
        return deployment

    def close(self) -> None:
        self.succession.close()
        self.active = None


class _CellDeployment(Deployment):
    def __init__(self, *args: Any, tc: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tc = tc

    def tc_env(self) -> dict[str, str]:
        return dict(self._tc)


@pytest.fixture(scope="session")
def cells(pytestconfig: pytest.Config) -> Iterator[CellManager]:
    manager = CellManager(pytestconfig.stash[DRIVERS], _run_dir(pytestconfig),
                          topologies=pytestconfig.stash[TOPOLOGIES])
    yield manager
    manager.close()


@pytest.fixture
def deployment(request: pytest.FixtureRequest, cells: CellManager) -> Deployment:
    dep = cells.get(request.param)
    if request.config.getoption("--pcap") != "none":
        dep.probe_all(["client", *(f"router-{i}" for i in range(dep.topology.router_count))])
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
    expectations = verdicts.expected(deployment.topology, deployment.drivers, keepalive_interval=interval,
                                     keepalive_timeout=float(dict(cell.tc).get("TC_KEEPALIVE_TIMEOUT", 30)))
    if any(deployment.drivers[lb.driver].customer_topology for lb in deployment.topology.load_balancers):
        expectations = verdicts.expected_for_customer(deployment.topology, expectations)

    def check(name: str, seen: Observation, /, *, column: str | None = None, evidence: Evidence | None = None,
              **details: Any) -> None:
        if not isinstance(seen, Observation):  # the vocabulary is closed: no free-form strings
            raise TypeError(f"verdict({name!r}, ...) takes a harness.outcomes.Observation, not {seen!r}")
        exp = expectations[name]
        if exp.outcome is Outcome.NOT_APPLICABLE:  # e.g. a customer config without the listener the check needs
            seen = Observation(Outcome.NOT_APPLICABLE, exp.because)
        if evidence is not None:  # the attempt this verdict rests on, and its window
            details = {"attempt": evidence.attempt, "window": [round(evidence.started, 3), round(evidence.ended, 3)],
                       **details}
        record = {"cell": f"{cell.topology}-{cell.driver}", "variant": cell.id, "topology": cell.topology,
                  "driver": cell.driver, "check": column or name, "expected": exp.outcome.value,
                  "because": exp.because, "observed": seen.outcome.value, "detail": seen.detail,
                  "attempt": evidence.attempt if evidence else None, "diagnosis": seen.outcome.diagnosis,
                  "ok": seen.outcome is exp.outcome, "details": details, "environment": deployment.environment()}
        if evidence is not None:  # the attempt's path hop by hop, for the report's diagram
            record["hops"] = _hops_of(evidence)
        request.node.user_properties.append(("harness_check", record))
        request.node.user_properties.extend(junit_properties(record))
        if seen.outcome is Outcome.NOT_APPLICABLE:  # nothing to compare: n/a in the report, with the reason
            return
        assert seen.outcome is exp.outcome, (
            f"{name}: expected '{exp.outcome}' ({exp.because}) but observed '{seen}': {seen.outcome.diagnosis}; "
            f"details: {details}")

    return check


DEPLOYMENT = pytest.StashKey[Deployment]()


def _hops_of(evidence: Evidence) -> list[dict[str, Any]] | None:
    """``harness.hops.trace``; the report's picture must never cost a verdict, so a failure to
    trace is recorded as no trace (the report then draws the topology without colours)."""
    try:
        return hops.trace(evidence)
    except Exception as exc:  # noqa: BLE001 - presentation only
        print(f"[harness] could not trace the hops of attempt {evidence.attempt}: {exc!r}", file=sys.stderr)
        return None


def junit_properties(record: dict[str, Any]) -> list[tuple[str, str]]:
    """JUnit ``<property>`` pairs for one check: ``<check>.expected``, ``.observed``, ``.diagnosis``
    (and ``.broken_at``, the first broken hop), so CI tools read the verdict without report.json."""
    check = record["check"]
    props = [(f"{check}.expected", str(record.get("expected") or "")),
             (f"{check}.observed", str(record.get("observed") or "")),
             (f"{check}.diagnosis", str(record.get("diagnosis") or ""))]
    if where := hops.broken_at(record.get("hops")):
        props.append((f"{check}.broken_at", where))
    return props


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        _attach_evidence(item, report)
    if report.when in ("setup", "call"):
        _record_unrecorded_check(item, call, report)


def _attach_evidence(item: pytest.Item, report: pytest.TestReport) -> None:
    dep = item.stash.get(DEPLOYMENT, None)
    keep_all = item.config.getoption("--pcap") == "all"
    if dep is None or not (report.failed or keep_all):
        return
    run_dir = _run_dir(item.config)
    relative = Path("evidence") / re.sub(r"[^\w.-]+", "_", item.nodeid)
    folder = run_dir / relative
    try:
        files = dep.collect(folder, since=item.stash.get(STARTED_AT, None), until=time.time())
    except Exception as exc:
        report.sections.append(("harness evidence", f"could not collect evidence: {exc}"))
        return
    report.user_properties.append(("harness_evidence", relative.as_posix()))  # relative to the run folder
    tails = "\n".join(f"--- {p.name} (last 40 lines) ---\n" + "\n".join(p.read_text().splitlines()[-40:])
                      for p in files if p.suffix == ".log")
    report.sections.append(("harness evidence", f"written to {folder}\n{tails}"))


def _run_dir(config: pytest.Config) -> Path:
    """This run's folder; the results folder itself when there is none (--collect-only and such)."""
    return config.stash.get(RUN_DIR, None) or Path(config.getoption("--results-dir")).resolve()


def _without_cells(item: pytest.Item) -> bool:
    """A deployment test that got no cell in this run: pytest would report it as skipped ("got
    empty parameter set"); it is deselected instead, as a test of no cell this run has."""
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "deployment" in callspec.params and _cell_of(item) is None


def _cell_of(item: pytest.Item) -> Cell | None:
    callspec = getattr(item, "callspec", None)
    cell = callspec.params.get("deployment") if callspec is not None else None
    return cell if isinstance(cell, Cell) else None


def _record_unrecorded_check(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """A check test in a cell that ends a phase without a verdict record (its cell did not start, it
    crashed, it skipped) gets one with status error or skipped and the reason, so that (cell, check)
    shows in the report instead of vanishing."""
    cell = _cell_of(item)
    if cell is None or not (item.get_closest_marker("check") or "verdict" in getattr(item, "fixturenames", ())):
        return
    if any(key == "harness_check" for key, _ in report.user_properties):
        return
    if report.passed:
        if report.when == "setup":
            return  # the call phase will tell
        status, reason = report_writer.ERROR, "the test passed without recording a verdict"
    elif report.skipped:
        status, reason = report_writer.SKIPPED, _skip_reason(report)
    else:
        status = report_writer.ERROR
        reason = ("setup failed: " if report.when == "setup" else "") + _exception_line(call, report)
    report.user_properties.append(("harness_check", _unrecorded(item, cell, status, reason)))


def _unrecorded(item: pytest.Item, cell: Cell, status: str, reason: str) -> dict[str, Any]:
    marker = item.get_closest_marker("check")
    name = str(marker.args[0]) if marker and marker.args else getattr(item, "originalname", item.name)
    column = (marker.kwargs.get("column") if marker else None) or name
    expected, because = _expectation(item.config, cell, name)
    return {"cell": f"{cell.topology}-{cell.driver}", "variant": cell.id, "topology": cell.topology,
            "driver": cell.driver, "check": column, "expected": expected, "because": because, "observed": status,
            "detail": reason, "attempt": None, "diagnosis": reason, "ok": False, "details": {}, "environment": {},
            "status": status}


def _expectation(config: pytest.Config, cell: Cell, check: str) -> tuple[str, str]:
    """What the seed predicts for ``check`` in ``cell`` (as the verdict fixture computes it), or
    empty strings when that cannot be said: the report still shows the cell and the reason."""
    try:
        topo = config.stash[TOPOLOGIES][cell.topology].with_driver(cell.driver)
        if cell.lb_idle:
            topo = topo.with_idle_timeout(cell.lb_idle)
        if cell.faults:
            topo = topo.with_faults(cell.faults)
        interval = float(dict(cell.tc).get("TC_KEEPALIVE_INTERVAL", 15))
        exp = verdicts.expected(topo, config.stash[DRIVERS], keepalive_interval=interval,
                                keepalive_timeout=float(dict(cell.tc).get("TC_KEEPALIVE_TIMEOUT", 30)))[check]
    except Exception:  # best effort: an unknown check name or driver must not hide the record itself
        return "", ""
    return str(report_writer.plain(exp.outcome)), exp.because


def _exception_line(call: pytest.CallInfo[None], report: pytest.TestReport) -> str:
    """``ExceptionType: message`` (its first line: NodeStartError and friends append logs below)."""
    if call.excinfo is not None:
        return _first_line(call.excinfo.exconly(tryshort=True))
    return _failure_line(report)


def _failure_line(report: pytest.TestReport) -> str:
    """The failure's ``ExceptionType: message`` line, from the report alone (an xdist worker's too)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return _first_line(crash.message)
    lines = [line.strip() for line in report.longreprtext.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no details"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:300] if lines else "unknown error"


def _skip_reason(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return f"xfail: {report.wasxfail}"
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return report.longreprtext.strip().splitlines()[-1] if report.longreprtext.strip() else "skipped"


# ---- the report: records come from every worker through the reports' user_properties -------------


class RunRecorder:
    """The run's report, on the controller (or the only process): gathers every check record from
    the test reports of all workers, writes report.{json,md,html} into the run folder at the end
    (always, even with no record), prints the summary line, and makes a mismatch or error fail the
    run even when no pytest test failed with it."""

    def __init__(self, config: pytest.Config, run_dir: Path) -> None:
        self.config = config
        self.run_dir = run_dir
        self.records: list[dict[str, Any]] = []  # normalized, status set, in arrival order
        self.started = time.monotonic()
        self.duration = 0.0  # seconds, at the end of the session
        self.files: list[Path] = []
        self.note = ""  # why there is no record, when there is none
        self.raised_exit = False  # the report, not a test, made the run fail
        self.progress = progress.Progress([(t, d) for t in config.stash[TOPOLOGIES] for d in config.stash[DRIVERS]])

    # ---- progress lines (harness.progress): a cell brought up, a cell completed -------------------

    def _say(self, line: str | None) -> None:
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if line and terminal is not None:
            terminal.ensure_newline()
            terminal.write_line(line)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.progress.collected(item.nodeid for item in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if not self.progress.cells:  # every worker collects the same ids
            self.progress.collected(ids)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self._say(self.progress.started(nodeid))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":  # its user_properties repeat the call's records
            if report.failed:
                self._teardown_failed(report)
            mine = [r["status"] for r in self.records if r.get("nodeid") == report.nodeid]
            self.progress.recorded(report.nodeid, mine)
            self._say(self.progress.finished(report.nodeid))
            return
        evidence = next((v for k, v in report.user_properties if k == "harness_evidence"), None)
        records = [report_writer.normalize(v) for k, v in report.user_properties if k == "harness_check"]
        explained = any(r["status"] in report_writer.FAILING for r in records)
        for rec in records:
            rec["nodeid"] = report.nodeid
            rec["evidence"] = rec.get("evidence") or evidence
            if report.failed and not explained and rec["status"] in (report_writer.PASS, report_writer.AS_PREDICTED):
                rec["status"] = report_writer.ERROR  # the check held, then the test failed
                rec["detail"] = f"test failed after the check: {_failure_line(report)}"
            self.records.append(rec)

    def _teardown_failed(self, report: pytest.TestReport) -> None:
        for rec in self.records:
            if rec.get("nodeid") == report.nodeid and rec["status"] not in report_writer.FAILING:
                rec["status"] = report_writer.ERROR
                rec["detail"] = f"teardown failed: {_failure_line(report)}"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.records:
            self.note = _why_no_checks(session)
        self.duration = time.monotonic() - self.started
        self.files = report_writer.write(self.records, self.run_dir, self.config.stash[TOPOLOGIES], self.duration,
                                         note=self.note)
        _point_latest(self.run_dir)  # the newest finished run, even if another one started since
        _prune_runs(self.run_dir, KEEP_RUNS)
        if report_writer.failing(self.records) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            self.raised_exit = True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.section("CF WebSocket LB matrix")
        if self.records:
            terminalreporter.write_line(report_writer.to_terminal(report_writer.group(self.records)))
        summary = report_writer.summary(self.records, self.duration)
        terminalreporter.write_line(summary + (f" ({self.note})" if self.note else ""), bold=True)
        if self.raised_exit:
            terminalreporter.write_line("exit status 1: the report holds a mismatch or error that no failed test "
                                        "shows", red=True)
        for path in self.files:
            terminalreporter.write_line(f"report: {path}")
        if self.files and (self.run_dir.parent.parent / "latest").exists():
            terminalreporter.write_line(f"latest: {self.run_dir.parent.parent / 'latest'}")


def _why_no_checks(session: pytest.Session) -> str:
    if session.exitstatus == pytest.ExitCode.INTERRUPTED:
        return "the run was interrupted before any check reported"
    if not session.testscollected:
        return "nothing was collected: check the test paths, -k/-m, --topology and --lb"
    return (f"none of the {session.testscollected} tests collected is a check in a matrix cell (only scenario "
            "tests with a deployment record checks)")
