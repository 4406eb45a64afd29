"""The bounded arrival timeline: small whatever the stream's length, and no gap lost to downsampling."""

from __future__ import annotations

from harness.protocol.delivery import DeliveryLedger
from harness.protocol.timeline import ArrivalTimeline

RATE = 200.0  # envelopes per second, as the failover scenario emits


def stream(timeline: ArrivalTimeline, seqs: range, start: float) -> float:
    t = start
    for seq in seqs:
        t = start + (seq - seqs.start) / RATE
        timeline.add(t, seq)
    return t


def test_a_100k_envelope_stream_stays_bounded_with_first_and_last() -> None:
    timeline = ArrivalTimeline()
    stream(timeline, range(100_000), 0.0)
    points = timeline.points()
    assert timeline.arrivals == 100_000
    assert 128 <= len(points) <= 500
    assert points[0] == (0.0, 0) and points[-1] == ((100_000 - 1) / RATE, 99_999)
    assert [p[0] for p in points] == sorted(p[0] for p in points)


def test_a_gap_survives_the_downsampling_with_both_sides_kept() -> None:
    """A router death: 212 envelopes lost 2.1 s into a 100k stream, re-dial 1.1 s later."""
    timeline = ArrivalTimeline()
    end = stream(timeline, range(0, 41_237), 0.0)
    stream(timeline, range(41_449, 100_000), end + 1.1)
    points = timeline.points()
    assert len(points) <= 500
    i = points.index((end, 41_236))
    assert points[i + 1] == (end + 1.1, 41_449)  # the jump: both sides, nothing in between


def test_a_pause_without_loss_is_kept() -> None:
    """A paused LB: nothing lost, the stream stalls 5 s; the stall's two sides are points."""
    timeline = ArrivalTimeline()
    end = stream(timeline, range(0, 30_001), 0.0)
    stream(timeline, range(30_001, 90_000), end + 5.0)
    points = timeline.points()
    i = points.index((end, 30_000))
    assert points[i + 1] == (end + 5.0, 30_001)


def test_many_small_jumps_keep_the_largest_and_stay_bounded() -> None:
    """Random loss: a jump every 20 envelopes; the one big gap is still there, the size is capped."""
    timeline = ArrivalTimeline()
    seqs = [n for n in range(100_000) if n % 20 != 7 and not 50_000 <= n < 50_500]
    for seq in seqs:
        timeline.add(seq / RATE, seq)
    points = timeline.points()
    assert len(points) <= timeline.samples + 2 * timeline.max_breaks + 2
    i = points.index((49_999 / RATE, 49_999))
    assert points[i + 1] == (50_500 / RATE, 50_500)


def test_an_ordinary_stream_is_not_a_break() -> None:
    """Negative control for the pinning: a steady stream keeps no break points, only samples."""
    timeline = ArrivalTimeline()
    stream(timeline, range(10_000), 0.0)
    assert timeline._breaks == []
    assert timeline.significance((0.0, 5), (0.005, 6)) == 0
    assert timeline.significance((0.0, 5), (0.005, 5)) == 0  # a duplicate is not a jump
    assert timeline.significance((0.0, 5), (0.005, 17)) == 11
    assert timeline.significance((0.0, 5), (1.0, 6)) == 4


def test_the_ledger_counts_the_timeline_from_its_origin() -> None:
    ledger = DeliveryLedger(3, origin=100.0)
    for seq, at in ((0, 100.5), (2, 101.75)):
        ledger.record(seq, at=at)
    assert ledger.timeline.as_json() == [[0.5, 0], [1.75, 2]]
    assert ledger.summary()["lost_ranges"] == [[1, 1]]
    plain = DeliveryLedger(2)
    plain.record(0)  # no arrival time: no point
    assert plain.timeline.points() == [] and plain.origin is None
