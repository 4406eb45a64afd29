"""The witness waits for the TC to log the end of what it opened (frames scripts included)."""

from __future__ import annotations

import pytest

from harness.errors import ScenarioError
from harness.witness import Witness, still_open

pytestmark = pytest.mark.unit


def ev(name: str) -> dict[str, object]:
    return {"event": name, "ts": 1.0}


@pytest.mark.parametrize("events, expected", [
    ([], False),
    ([ev("stream_open")], True),
    ([ev("stream_open"), ev("stream_closed")], False),
    # the failure seen under load: the client had its close echo, the TC had not logged frames_closed
    ([ev("frames_open")], True),
    ([ev("frames_open"), ev("frames_closed")], False),
    ([ev("stream_open"), ev("stream_closed"), ev("frames_open")], True),
])
def test_still_open(events: list[dict[str, object]], expected: bool) -> None:
    assert still_open(events) is expected


class _Container:
    def __init__(self, status: str) -> None:
        self.status = status

    def reload(self) -> None:
        pass


class _Node:
    """A node whose evidence GET answers ``exit`` with ``out``; ``status``: Docker's, after it;
    ``listening``: its process logged its listening line since its current start."""

    paused = False

    def __init__(self, exit_code: int, out: str, status: str = "running", listening: bool = True) -> None:
        self.answer, self.docker, self.listening = (exit_code, out), _Container(status), listening

    def exec(self, cmd: list[str]) -> tuple[int, str]:
        return self.answer

    def listening_now(self) -> bool:
        return self.listening


class _Deployment:
    def __init__(self, **nodes: _Node) -> None:
        self.nodes = nodes


def test_the_tc_s_events_are_read_and_kept_to_the_attempt_s_window() -> None:
    events = '[{"event": "stream_open", "ts": 10.0}, {"event": "stream_open", "ts": 99.0}]'
    assert Witness(_Deployment(tc=_Node(0, events))).tc_events("a1", 9.0, 12.0) == [{"event": "stream_open", "ts": 10.0}]


def test_a_running_node_that_does_not_answer_is_an_error_not_no_evidence() -> None:
    with pytest.raises(ScenarioError, match=r"tc: GET .*events\?attempt=a1 failed \(curl exit 7\) on a running node"):
        Witness(_Deployment(tc=_Node(7, "connection refused"))).tc_events("a1", 0.0, 1.0)


def test_a_node_that_is_not_running_has_no_records() -> None:
    """A killed router keeps none; the others' records still count."""
    dep = _Deployment(**{"router-0": _Node(7, "", status="exited"),
                         "router-1": _Node(0, '[{"status": 101, "ts": 5.0}]')})
    dep.topology = type("T", (), {"router_count": 2})()  # type: ignore[attr-defined]
    assert Witness(dep).router_records("a1", 4.0, 6.0) == [{"status": 101, "ts": 5.0}]


def test_a_router_started_again_and_not_listening_yet_has_no_records() -> None:
    """After a failover test starts the killed router again, its new process holds none."""
    dep = _Deployment(**{"router-0": _Node(7, "", listening=False)})
    dep.topology = type("T", (), {"router_count": 1})()  # type: ignore[attr-defined]
    assert Witness(dep).router_records("a1", 0.0, 1.0) == []
