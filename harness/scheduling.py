"""How a run's tests are dealt to xdist workers: longest groups first, long waits in groups of their own.

A cell's tests share one xdist group, so a worker brings the cell up once. Most of a cell's time is
timers (an LB's stalled-client timeout, noaa's keepalive), not CPU, and the biggest cells held 250 s
each, longer than anything else in the run. A test that waits declares about how long
(``@pytest.mark.waits(seconds)``); with ``group=`` it runs in a group of its own, ``<cell>~<group>``,
i.e. another copy of its cell on whichever worker is free (with cell sharing that copy costs an LB
and a client). Groups then go out longest first (the classic longest-processing-time rule): xdist's
own order is by number of tests, which put a 3-test group that waits two minutes at the very end.

``Unit``, ``weights`` and ``longest_first`` are pure: the plugin turns pytest items into ``Unit``s
and applies the result. ``OneAhead`` is the xdist scheduler that deals the groups in that order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from xdist.scheduler import LoadGroupScheduling

#: Estimated seconds of a cell's bring-up and of a test that declares no wait (measured: a cell's
#: bring-up 1.5-5 s, the median test 0.3-4 s).
BRING_UP_S = 5.0
DEFAULT_S = 1.0


@dataclass(frozen=True)
class Unit:
    """What scheduling needs to know about one test."""

    nodeid: str
    cell: str | None = None  # the cell id of a scenario test
    waits: float | None = None  # its ``waits`` mark, seconds
    #: a scenario test: the ``waits`` mark's ``group=`` (a group of its own within the cell); a test
    #: without a cell: the ``xdist_group`` it names itself (tests that share a deployment chain)
    group: str | None = None


def group_of(unit: Unit) -> str | None:
    """The xdist group a test runs in: its cell's, ``<cell>~<group>``, or the group a test without a
    cell names; None for a test in no group (xdist schedules it alone)."""
    if unit.cell is None:
        return unit.group
    return f"{unit.cell}~{unit.group}" if unit.group else unit.cell


def weights(units: list[Unit]) -> dict[str, float]:
    """Estimated seconds per work unit (a group, or a test without one), bring-ups included."""
    total: Counter[str] = Counter()
    for unit in units:
        key = group_of(unit)
        if key is not None and key not in total:
            total[key] += BRING_UP_S
        total[key or unit.nodeid] += DEFAULT_S if unit.waits is None else unit.waits
    return dict(total)


def longest_first(units: list[Unit]) -> list[int]:
    """Indices of ``units`` in the order to hand them out: heaviest work unit first, a unit's tests
    together and in their own order; ties keep the order they came in (the same on every worker)."""
    weight = weights(units)
    first: dict[str, int] = {}
    for i, unit in enumerate(units):
        first.setdefault(group_of(unit) or unit.nodeid, i)

    def key(i: int) -> tuple[float, int, int]:
        unit_key = group_of(units[i]) or units[i].nodeid
        return -weight[unit_key], first[unit_key], i

    return sorted(range(len(units)), key=key)


class OneAhead(LoadGroupScheduling):
    """xdist's ``loadgroup``, but a worker gets its next group only when it is down to its last test.

    xdist tops a worker up whenever it has two tests or fewer pending (``_reschedule`` in
    pytest-dev/pytest-xdist, src/xdist/scheduler/loadscope.py), so a worker on a group of one test
    (noaa's 50 s wait) took the next two groups at once and kept them while other workers ran dry:
    one worker ran a tcp-peer group, two noaa groups and a keepalive group back to back (244 s of
    the run's 256). A worker needs one test ahead (pytest tears a test's fixtures down knowing the
    next), so that is all it is given; groups then go to whichever worker is free, in
    ``longest_first`` order."""

    def _reschedule(self, node: Any) -> None:
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
            return
        if self._pending_of(self.assigned_work[node]) > 1:
            return
        self._assign_work_unit(node)
