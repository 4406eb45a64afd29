"""Which old image tags a build may prune: only those of images older than a day (another
checkout's run on the same engine may still need a newer one)."""

from __future__ import annotations

import datetime

import pytest

from harness.images import PRUNE_AFTER_S, stale

pytestmark = pytest.mark.unit

NOW = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.timezone.utc).timestamp()


@pytest.mark.parametrize("created, expected", [
    ("2026-11-28T11:00:00.123456789Z", False),  # an hour old: maybe another run's, kept
    ("2026-11-27T11:59:59.5Z", True),  # just over a day: pruned
    ("2026-11-20T08:00:00Z", True),
    ("1970-01-01T00:00:00Z", True),  # no creation time at all
])
def test_only_images_older_than_a_day_lose_their_tags(created: str, expected: bool) -> None:
    assert stale(created, NOW) is expected


def test_the_cut_is_the_constant() -> None:
    assert PRUNE_AFTER_S == 24 * 3600
