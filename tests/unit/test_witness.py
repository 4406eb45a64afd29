"""The witness waits for the TC to log the end of what it opened (frames scripts included)."""

from __future__ import annotations

import pytest

from harness.witness import still_open

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
