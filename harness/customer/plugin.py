"""The pytest side of customer configs: ``--customer-config [doppler=]FILE`` builds the cell from
the configs' listeners, the ``idle_measured`` mark picks the cells whose idle cut must be measured,
and ``CustomerReport`` writes ``customer.md`` and prints each verdict with the line at fault.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from harness import drivers as driver_registry
from harness.customer import driver_for, load
from harness.customer.cell import ROLES, TOPOLOGY, topology_for
from harness.customer.diagnose import annotate, terminal_lines, write
from harness.customer.model import CustomerConfig
from harness.topology import Topology

#: Driver name per role: the main LB is the LB under test (``--lb customer``); a dedicated
#: WebSocket LB is bound to its own driver in the derived topology.
DRIVER = {"default": "customer", "doppler": "customer-doppler"}


def _roles(values: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for value in values:
        role, _, file = value.rpartition("=") if "=" in value and not Path(value).exists() else ("", "", value)
        role = role or "default"
        if role not in ROLES:
            raise pytest.UsageError(f"--customer-config {value}: unknown role '{role}'; fix: FILE for the LB every "
                                    "hostname resolves to, doppler=FILE for a dedicated WebSocket LB")
        if role in out:
            raise pytest.UsageError(f"--customer-config {value}: a second config for the {role} LB; fix: give "
                                    "each LB once (FILE and doppler=FILE)")
        if not Path(file).is_file():
            raise pytest.UsageError(f"--customer-config {value}: no such file; fix: name a customer's nginx.conf "
                                    "or haproxy.cfg that exists")
        out[role] = Path(file)
    if "default" not in out:
        raise pytest.UsageError("--customer-config doppler=FILE: no main LB; fix: also pass --customer-config FILE "
                                "for the LB the API and apps resolve to")
    return out


def customer_cell(config: pytest.Config, values: list[str], drivers: dict[str, driver_registry.Driver],
                  topologies: dict[str, Topology]) -> None:
    """Parse each config, add its driver and the derived topology, make 'customer' the LB under test."""
    for name in (t.strip() for t in config.getoption("--topology").split(",") if t.strip()):
        if name != TOPOLOGY:
            raise pytest.UsageError(f"--topology {name} with --customer-config: the cell is built from the config's "
                                    f"own listeners; fix: drop --topology (or say --topology {TOPOLOGY})")
    workdir = Path(tempfile.mkdtemp(prefix="harness-customer-"))
    parsed: dict[str, tuple[str, CustomerConfig]] = {}
    for role, path in _roles(values).items():
        parsed[role] = (DRIVER[role], load(path))
    topo = topology_for({role: (name if role != "default" else "default", cfg)
                         for role, (name, cfg) in parsed.items()}, workdir)
    for role, (name, cfg) in parsed.items():
        base = driver_for(cfg, workdir / name, name=name)
        drivers[name] = driver_registry.Driver(**{**base.__dict__, "customer_topology": TOPOLOGY})
    topologies[TOPOLOGY] = topo
    config.option.lb = config.getoption("--lb") or DRIVER["default"]
    config.pluginmanager.register(OnlyCustomerCells(), "harness-customer-cells")
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(CustomerReport(config, {DRIVER[r]: c for r, (_, c) in parsed.items()},
                                                     topo.with_driver(DRIVER["default"])),
                                      "harness-customer-report")


def idle_measured_cells(marker: pytest.Mark, topologies: dict[str, Topology],
                        drivers: dict[str, driver_registry.Driver], under_test: list[str]) -> list[Any]:
    """A cell per (topology, LB under test) whose idle cut the harness does not set: customer
    configs and drivers without ``honours_idle_timeout``. Drivers that honour it are judged by the
    cheap artificial lb_idle variants instead, so the timer-bound measurement runs only where it
    answers something."""
    from harness.plugin import Cell

    tc = tuple(sorted((marker.kwargs.get("tc") or {}).items()))
    return [Cell(t, d, tc) for t in topologies for d in under_test
            if not drivers[d].honours_idle_timeout and drivers[d].supports(topologies[t]) is None]


class OnlyCustomerCells:
    """With --customer-config, scenario cells of other LBs (tests that fix their driver, e.g.
    nginx controls) are deselected: the run answers questions about the customer's config only."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        from harness.plugin import _cell_of

        drop = [item for item in items if (cell := _cell_of(item)) is not None and cell.topology != TOPOLOGY]
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = [item for item in items if item not in drop]


class CustomerReport:
    """Controller side: annotates the run's records with the lines at fault (report.json carries
    them as ``at_fault``), writes ``customer.md`` into the run folder, prints the verdict lines."""

    def __init__(self, config: pytest.Config, configs: dict[str, CustomerConfig], topo: Topology) -> None:
        self.config, self.configs, self.topology = config, configs, topo
        self.path: Path | None = None
        self.lines: list[str] = []

    def _records(self) -> list[dict[str, Any]]:
        recorder = self.config.pluginmanager.get_plugin("harness-run-recorder")
        return recorder.records if recorder is not None else []

    @pytest.hookimpl(tryfirst=True)  # before the run recorder writes report.json
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        records = self._records()
        annotate(records, self.configs, self.topology)
        from harness.plugin import RUN_DIR

        run_dir = self.config.stash.get(RUN_DIR, None)
        if run_dir is not None:
            self.path = write(run_dir, self.configs, records, self.topology)
        self.lines = terminal_lines(records, self.topology)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.section("customer LB config")
        for cfg in self.configs.values():
            terminalreporter.write_line(f"config: {cfg.path} ({cfg.kind}); listeners: " + ", ".join(
                f"{lst.port}/{lst.protocol}{'+tls' if lst.tls else ''}" for lst in cfg.listeners))
        for line in self.lines:
            terminalreporter.write_line(line)
        if self.path:
            terminalreporter.write_line(f"customer report: {self.path}")
