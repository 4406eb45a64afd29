"""harness.scheduling: which xdist group a test runs in, and the order groups go out."""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadGroupScheduling

from harness.scheduling import BRING_UP_S, DEFAULT_S, OneAhead, Unit, group_of, longest_first, weights

pytestmark = pytest.mark.unit


def test_a_cells_tests_share_its_group_and_a_named_wait_gets_its_own() -> None:
    assert group_of(Unit("t::a", cell="http-upgrade-haproxy")) == "http-upgrade-haproxy"
    assert group_of(Unit("t::b", cell="http-upgrade-haproxy", waits=40, group="tcp-peer")) == \
        "http-upgrade-haproxy~tcp-peer"
    assert group_of(Unit("unit::c", waits=15)) is None  # no cell, no group: xdist schedules it alone
    assert group_of(Unit("byo::d", waits=20, group="bring-your-own")) == "bring-your-own"


def test_a_group_weighs_its_bring_up_and_its_tests() -> None:
    units = [Unit("a", cell="c"), Unit("b", cell="c", waits=20), Unit("u")]
    assert weights(units) == {"c": BRING_UP_S + DEFAULT_S + 20, "u": DEFAULT_S}


def test_longest_first_keeps_a_groups_tests_together_and_in_order() -> None:
    units = [Unit("small::1", cell="small"), Unit("big::1", cell="big"), Unit("lone", waits=90),
             Unit("small::2", cell="small"), Unit("big::2", cell="big", waits=50),
             Unit("big::peer", cell="big", waits=40, group="tcp-peer")]
    order = [units[i].nodeid for i in longest_first(units)]
    # lone 90 > big 5+1+50 = 56 > big~tcp-peer 5+40 = 45 > small 5+1+1 = 7
    assert order == ["lone", "big::1", "big::2", "big::peer", "small::1", "small::2"]


def test_tests_without_a_cell_that_share_a_group_go_out_as_one() -> None:
    units = [Unit("c::1", cell="c", waits=30), *(Unit(f"byo::{i}", waits=20, group="byo") for i in range(3))]
    # byo: 5 + 3 x 20 = 65 > c: 5 + 30 = 35
    assert [units[i].nodeid for i in longest_first(units)] == ["byo::0", "byo::1", "byo::2", "c::1"]


def test_ties_keep_the_order_of_collection() -> None:
    units = [Unit("b", cell="b"), Unit("a", cell="a")]
    assert longest_first(units) == [0, 1]


class _Node:
    """What xdist's scheduler calls on a worker: the tests it is sent, and its shutdown."""

    def __init__(self, name: str) -> None:
        self.gateway = type("Gateway", (), {"id": name})()
        self.shutting_down = False
        self.sent: list[list[int]] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.append(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def _scheduler(kind: type, collection: list[str], workers: int) -> tuple[Any, list[_Node]]:
    option = type("Option", (), {"loadscopereorder": False})()
    config = type("Config", (), {"option": option, "getvalue": lambda self, name: [f"{workers}*popen"]})()
    sched = kind(config)
    nodes = [_Node(f"gw{i}") for i in range(workers)]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, collection)
    sched.schedule()
    return sched, nodes


COLLECTION = ["t::noaa@a~noaa", "t::x1@b", "t::x2@b", "t::x3@b", "t::y1@c", "t::y2@c", "t::z1@d", "t::z2@d"]


def test_a_worker_gets_its_next_group_on_its_last_test_not_before() -> None:
    sched, (first, second) = _scheduler(OneAhead, COLLECTION, 2)
    assert first.sent == [[0], [4, 5]]  # a one-test group needs one test ahead: the next group
    assert second.sent == [[1, 2, 3]]
    sched.mark_test_complete(second, 1)
    assert second.sent == [[1, 2, 3]]  # two tests left: nothing more yet
    sched.mark_test_complete(second, 2)
    assert second.sent == [[1, 2, 3], [6, 7]]  # on its last test: the next group


def test_xdists_own_loadgroup_deals_a_group_two_tests_early() -> None:
    """The control: what ``OneAhead`` changes (xdist tops up at two pending tests)."""
    sched, (_, second) = _scheduler(LoadGroupScheduling, COLLECTION, 2)
    sched.mark_test_complete(second, 1)
    assert second.sent == [[1, 2, 3], [6, 7]]
