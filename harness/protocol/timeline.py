"""A bounded arrival timeline of one log stream: (seconds since the run's start, seq) points.

What a reader of a fault or failover check wants to see is the shape of delivery: a steady slope,
a gap (a jump in sequence numbers, a long pause), then the slope again after the re-dial. Keeping
every arrival would cost memory and JSON (100k envelopes per stream); keeping every n-th would
erase the gap. So the timeline keeps two things, each bounded:

- a uniform sample of arrivals: every ``stride``-th one, the stride doubling (and every other kept
  sample dropped) whenever the sample fills up: O(1) amortised per envelope;
- the points on both sides of the most significant breaks in delivery, a break being a jump in
  sequence numbers (lost or reordered envelopes) or a pause longer than ``pause_s``; the
  ``max_breaks`` largest are kept in a min-heap (O(log max_breaks) per break, nothing per
  ordinary envelope).

The first and the last arrival are always kept. ``points()`` merges them in arrival order, at most
``samples + 2 * max_breaks + 2`` points.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

Point = tuple[float, int]  # (seconds since the run's start, sequence number)

#: A pause between two arrivals longer than this is a break worth keeping (the emitters here send
#: 100-200 envelopes/s, so an ordinary pause is a few ms; a stall or re-dial is hundreds of ms).
PAUSE_S = 0.25


@dataclass
class ArrivalTimeline:
    """Feed it every arrival in order; ``points()`` is what a chart draws."""

    samples: int = 256  # uniform sample size before it is halved
    max_breaks: int = 100  # breaks kept (two points each), the largest first
    pause_s: float = PAUSE_S
    _sample: list[Point] = field(default_factory=list)
    _stride: int = 1
    _count: int = 0
    _breaks: list[tuple[float, int, Point, Point]] = field(default_factory=list)  # min-heap (score, n, before, after)
    _first: Point | None = None
    _prev: Point | None = None

    def add(self, t: float, seq: int) -> None:
        """One arrival ``t`` s after the run's start."""
        point = (t, seq)
        prev = self._prev
        if prev is None:
            self._first = point
        elif seq != prev[1] + 1 or t - prev[0] > self.pause_s:  # the common step costs one comparison
            score = self.significance(prev, point)
            if score > 0:
                entry = (score, self._count, prev, point)
                if len(self._breaks) < self.max_breaks:
                    heapq.heappush(self._breaks, entry)
                elif score > self._breaks[0][0]:
                    heapq.heapreplace(self._breaks, entry)
        if self._count % self._stride == 0:
            self._sample.append(point)
            if len(self._sample) > self.samples:
                self._sample = self._sample[::2]  # keeps the points whose index is a multiple of 2*stride
                self._stride *= 2
        self._count += 1
        self._prev = point

    def significance(self, before: Point, after: Point) -> float:
        """How big a break between two consecutive arrivals is: the sequence numbers skipped (or gone
        back), or the pause in units of ``pause_s``, whichever is larger; 0 for an ordinary step."""
        jump = after[1] - before[1] - 1
        skipped = float(abs(jump)) if jump != 0 and after[1] != before[1] else 0.0
        pause = after[0] - before[0]
        paused = pause / self.pause_s if pause > self.pause_s else 0.0
        return max(skipped, paused)

    @property
    def arrivals(self) -> int:
        return self._count

    def points(self) -> list[Point]:
        """The kept points in arrival order, without duplicates; first and last included."""
        kept: dict[int, Point] = {}
        order: list[tuple[int, Point]] = []
        if self._first is not None:
            order.append((0, self._first))
        order += [(i * self._stride, p) for i, p in enumerate(self._sample)]
        for _, n, before, after in self._breaks:
            order += [(n - 1, before), (n, after)]
        if self._prev is not None:
            order.append((self._count - 1, self._prev))
        for index, point in order:
            kept[index] = point
        return [kept[i] for i in sorted(kept)]

    def as_json(self, digits: int = 3) -> list[list[float | int]]:
        """``[[t, seq], ...]`` with ``t`` rounded to ms: small enough for the client's JSON line."""
        return [[round(t, digits), seq] for t, seq in self.points()]
