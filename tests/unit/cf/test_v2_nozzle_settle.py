"""When a v2 nozzle stops reading: the deadline, or a quiet ``settle`` after its last envelope."""

from __future__ import annotations

import pytest

from harness.cf.v2clients import _read_until

pytestmark = pytest.mark.unit


def test_before_any_envelope_only_the_deadline_counts() -> None:
    assert _read_until(100.0, None, 4) == 100.0


def test_after_an_envelope_a_quiet_settle_ends_the_read() -> None:
    assert _read_until(100.0, 50.0, 4) == 54.0


def test_the_deadline_still_bounds_the_settle() -> None:
    assert _read_until(100.0, 98.0, 4) == 100.0


def test_settle_zero_is_off() -> None:
    assert _read_until(100.0, 50.0, 0) == 100.0
