"""``NodeProbe``: a CF-image node's own capture, driven through its agent (no Docker here: a node
stand-in answers the capture's signals with the lines ``harness.cf.capture`` would print)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from harness.capture import NodeProbe
from harness.errors import NodeStartError


class FakeRun:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = [{"event": "listening", "pid": 4242}]
        self.raw: list[str] = []
        self.ended: float | None = None

    def wait_event(self, event: str, timeout: float) -> dict[str, Any] | None:
        return next((line for line in self.lines if line.get("event") == event), None)


class FakeNode:
    """Answers SIGUSR1 with the next of ``answers`` (``rotated`` or ``rotate_failed``)."""

    name = "router-0"
    generation = 0

    def __init__(self, answers: list[str]) -> None:
        self.run, self.answers, self.signals = FakeRun(), list(answers), []
        self.docker = type("Container", (), {"id": "c0ffee", "status": "running"})()

    def client_run(self, cmd: list[str], attempt: str | None = None) -> FakeRun:
        assert cmd[-3:] == ["capture", "--out", "/tmp/capture.pcap"]
        return self.run

    def exec(self, cmd: list[str]) -> tuple[int, str]:
        found = re.search(r"os\.kill\((\d+), signal\.(\w+)\)", cmd[-1])
        assert found and found.group(1) == "4242", cmd
        self.signals.append(found.group(2))
        if found.group(2) == "SIGUSR1":
            self.run.lines.append({"event": self.answers.pop(0)})
        return 0, ""


def test_rotations_are_counted_by_what_the_capture_answers() -> None:
    node = FakeNode(["rotated", "rotate_failed", "rotated"])
    probe = NodeProbe(node).start()  # type: ignore[arg-type]
    assert probe.pid == 4242 and probe.ident == "c0ffee:4242"
    assert probe.rotate(timeout=1) is True and probe.rotations == 1
    assert probe.rotate(timeout=1) is False and probe.rotations == 1  # the old pcap goes on
    assert probe.rotate(timeout=1) is True and probe.rotations == 2
    assert node.signals == ["SIGUSR1"] * 3


def test_a_rotation_nobody_answers_is_a_failure() -> None:
    node = FakeNode([])
    node.exec = lambda cmd: (0, "")  # type: ignore[method-assign]  # the signal is lost
    assert NodeProbe(node).start().rotate(timeout=0.3) is False  # type: ignore[arg-type]


def test_stop_signals_a_running_capture_only() -> None:
    node = FakeNode([])
    probe = NodeProbe(node).start()  # type: ignore[arg-type]
    probe.stop()
    assert node.signals == ["SIGTERM"]
    node.docker.status = "exited"
    probe.stop()
    assert node.signals == ["SIGTERM"]


def test_a_capture_that_never_listens_is_a_start_error_with_its_output() -> None:
    from harness.errors import NodeStartError

    node = FakeNode([])
    node.run.lines = [{"event": "not_capturing", "interfaces": ["eth0"]}]
    node.run.raw = ['{"event": "not_capturing", "interfaces": ["eth0"]}']
    try:
        NodeProbe(node).start()  # type: ignore[arg-type]
    except NodeStartError as exc:
        assert "router-0 (its capture)" in str(exc) and "not_capturing" in str(exc)
    else:
        raise AssertionError("a capture that never listened was taken as started")


@pytest.mark.parametrize("exited", [False, True])
def test_a_node_start_error_survives_pickling_and_says_which_it_was(exited: bool) -> None:
    """xdist and copies rebuild an exception from its args; an exit is not a timeout to raise."""
    import pickle

    error = NodeStartError("lb", "lb:80 reachable from the client", 1.0, "[emerg] unknown directive", exited)
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.exited is exited
    assert ("exited after 1 s" in str(again)) is exited
    assert ("HARNESS_TIMEOUT_FACTOR" in str(again)) is not exited
