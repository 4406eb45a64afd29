"""Progress while the matrix runs: a line when a cell is brought up and one when it completes.

``[7/25] tcp-same-port x haproxy: 7/7 as predicted, 12 s``. The plugin's run recorder feeds it the
collected node ids, each test's start and each report, on the controller (xdist workers' output does
not reach the terminal). Pure bookkeeping: unit-tested without pytest runs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

_PARAMS = re.compile(r"\[([^\]]*)\]")
AS_PREDICTED = ("pass", "as_predicted")


def cell_of(nodeid: str, pairs: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
    """(topology, driver) of a scenario test's node id: the longest ``<topology>-<driver>`` that
    begins its parameter id (``Cell.id``, which may carry suffixes such as ``-fault-client-lb``)."""
    found = _PARAMS.search(nodeid.split("@", 1)[0])
    if not found:
        return None
    param = found.group(1)
    best: tuple[str, str] | None = None
    for topology, driver in pairs:
        prefix = f"{topology}-{driver}".replace("_", "-")
        if (param == prefix or param.startswith(prefix + "-")) and (
                best is None or len(prefix) > len(f"{best[0]}-{best[1]}")):
            best = (topology, driver)
    return best


@dataclass
class _Cell:
    tests: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)
    statuses: list[str] = field(default_factory=list)
    started: float | None = None


@dataclass
class Progress:
    """Per (topology, driver): tests collected, finished, and the statuses of their records."""

    pairs: list[tuple[str, str]]
    cells: dict[tuple[str, str], _Cell] = field(default_factory=dict)
    completed: int = 0

    def collected(self, nodeids: Iterable[str]) -> None:
        for nodeid in nodeids:
            if (key := cell_of(nodeid, self.pairs)) is not None:
                self.cells.setdefault(key, _Cell()).tests.add(nodeid)

    def started(self, nodeid: str, now: float | None = None) -> str | None:
        """The bring-up line when this is the first test of its cell, else None."""
        key = cell_of(nodeid, self.pairs)
        cell = self.cells.get(key) if key else None
        if key is None or cell is None or cell.started is not None:
            return None
        cell.started = time.monotonic() if now is None else now
        return f"[up] {key[0]} x {key[1]}: bringing up the cell ({len(cell.tests)} tests)"

    def recorded(self, nodeid: str, statuses: Iterable[str]) -> None:
        key = cell_of(nodeid, self.pairs)
        if key is not None and key in self.cells:
            self.cells[key].statuses.extend(statuses)

    def finished(self, nodeid: str, now: float | None = None) -> str | None:
        """The completion line when this test was its cell's last, else None."""
        key = cell_of(nodeid, self.pairs)
        cell = self.cells.get(key) if key else None
        if key is None or cell is None or nodeid not in cell.tests or nodeid in cell.done:
            return None
        cell.done.add(nodeid)
        if cell.done != cell.tests:
            return None
        self.completed += 1
        elapsed = (time.monotonic() if now is None else now) - (cell.started or 0.0)
        return f"[{self.completed}/{len(self.cells)}] {key[0]} x {key[1]}: {tally(cell.statuses)}, {elapsed:.0f} s"


def tally(statuses: list[str]) -> str:
    """``7/7 as predicted`` or ``5/7 as predicted, 1 MISMATCH, 1 error`` (``no check recorded`` for
    a cell whose tests record no verdict)."""
    if not statuses:
        return "no check recorded"
    good = sum(s in AS_PREDICTED for s in statuses)
    rest = {s: statuses.count(s) for s in dict.fromkeys(statuses) if s not in AS_PREDICTED}
    words = {"mismatch": "MISMATCH", "error": "error", "skipped": "skipped", "n/a": "n/a"}
    return ", ".join([f"{good}/{len(statuses)} as predicted"] + [f"{n} {words.get(s, s)}" for s, n in rest.items()])
