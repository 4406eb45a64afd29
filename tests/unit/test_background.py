"""``harness.background.Background`` hands a background call's error to the test."""

from __future__ import annotations

import threading

import pytest

from harness.background import Background
from harness.errors import ScenarioError

pytestmark = pytest.mark.unit


def _fail() -> None:
    raise ScenarioError("emitter failed (curl exit 7)", "")


def test_join_raises_what_the_call_raised() -> None:
    with pytest.raises(ScenarioError, match="emitter failed"):
        Background(_fail).join(5)


def test_raise_if_failed_does_not_wait_for_a_call_still_running() -> None:
    release = threading.Event()
    call = Background(release.wait, 30)
    call.raise_if_failed()  # running, no error: nothing to raise, no wait
    assert call.is_alive()
    release.set()
    call.join(5)
    assert not call.is_alive()


def test_a_call_that_worked_raises_nothing() -> None:
    seen: list[int] = []
    Background(seen.append, 1).join(5)
    assert seen == [1]
