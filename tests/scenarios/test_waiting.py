"""``harness.waiting.LogLine`` on real containers: ready at the line, a precise error when the
container exits without it or stays silent past the timeout."""

from __future__ import annotations

import time

import pytest
from testcontainers.core.container import DockerContainer

from harness import engine, images, reaper
from harness.waiting import ContainerExited, LogLine

pytestmark = pytest.mark.scenario


def _box(script: str, wait: LogLine) -> DockerContainer:
    tag = images.ensure_images(["cf"])["cf"]
    return (DockerContainer(tag).with_kwargs(entrypoint=["sh", "-c", script], labels=reaper.labels())
            .waiting_for(wait))


def test_ready_when_the_line_comes_late_on_stderr() -> None:
    """Ready because of the line: it is in the log when ``start`` returns (not at the noise a second
    before it, not at a timeout: that raises). No upper bound on the time: a container's start under a loaded engine
    took 11.9 s once in CI, which says nothing about the waiter."""
    box = _box("sleep 1; echo noise; sleep 1; echo '{\"event\": \"listening\"}' >&2; sleep 60",
               LogLine(r'"event": "listening"', 20))
    began = time.monotonic()
    try:
        box.start()
        assert time.monotonic() - began > 0.9
        _, stderr = box.get_logs()
        assert b'"event": "listening"' in stderr
    finally:
        box.stop()


def test_an_exit_without_the_line_is_reported_as_such() -> None:
    box = _box("echo starting; exit 3", LogLine("listening", 20))
    try:
        with pytest.raises(ContainerExited, match="exited before logging a line matching 'listening'"):
            box.start()
    finally:
        box.stop()


def test_silence_ends_at_the_timeout() -> None:
    """The 2 s timeout ends the wait: not before, and long before the container's exit 600 s later.
    Timed from the container's start by Docker's clock, so a slow start under load does not count."""
    box = _box("echo starting; sleep 600", LogLine("listening", 2))
    began = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match="no log line matching 'listening' within 2 s"):
            box.start()
        gave_up = time.time()
        assert time.monotonic() - began >= 2
        wrapped = box.get_wrapped_container()
        wrapped.reload()
        assert wrapped.status == "running"
        started = engine.docker_time(wrapped.attrs["State"]["StartedAt"])
        assert gave_up - started < 20, "the wait did not end at its 2 s timeout"
    finally:
        box.stop()
