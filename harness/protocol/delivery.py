"""Delivery accounting for sequence-numbered log streams: lost, duplicated, out of order, latency."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.protocol.timeline import ArrivalTimeline


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), math.ceil(pct / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


@dataclass
class DeliveryLedger:
    """Feed it the sequence numbers as they arrive; it says what happened to 0..expected-1."""

    expected: int
    seen: set[int] = field(default_factory=set)
    received: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_at: float | None = None  # arrival clock (seconds) of the first and last envelope
    last_at: float | None = None
    max_stall_s: float = 0.0  # longest pause between two arrivals: what a stall looks like to the client
    #: the run's clock origin (same clock as ``at``): timeline points and the client's breaks count from
    #: it; None until set or the first arrival, which then becomes the origin
    origin: float | None = None
    timeline: ArrivalTimeline = field(default_factory=ArrivalTimeline)  # bounded (t, seq) arrivals for charts
    _last: int = -1
    _in_range: int = 0  # distinct seqs in 0..expected-1 seen so far: ``complete`` in O(1) per envelope

    def record(self, seq: int, latency_ms: float | None = None, at: float | None = None) -> None:
        if at is not None:
            if self.last_at is not None:
                self.max_stall_s = max(self.max_stall_s, at - self.last_at)
            self.first_at = at if self.first_at is None else self.first_at
            self.last_at = at
            if self.origin is None:
                self.origin = at
            self.timeline.add(at - self.origin, seq)
        self.received += 1
        if seq in self.seen:
            self.duplicates += 1
            return
        self.seen.add(seq)
        if 0 <= seq < self.expected:
            self._in_range += 1
        if seq < self._last:
            self.out_of_order += 1
        self._last = max(self._last, seq)
        if latency_ms is not None:
            self.latencies_ms.append(latency_ms)

    @property
    def complete(self) -> bool:
        return self._in_range == self.expected

    def lost(self) -> list[int]:
        return [n for n in range(self.expected) if n not in self.seen]

    def summary(self) -> dict[str, object]:
        lat = sorted(self.latencies_ms)
        lost = self.lost()
        return {
            "expected": self.expected,
            "received": self.received,
            "unique": len(self.seen),
            "lost": len(lost),
            "lost_ranges": _ranges(lost),
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
            "latency_ms_p50": percentile(lat, 50),
            "latency_ms_p99": percentile(lat, 99),
            "latency_ms_max": lat[-1] if lat else None,
            "max_seq": self._last if self.seen else None,
            "max_stall_s": round(self.max_stall_s, 3),
            "receive_span_s": round(self.last_at - self.first_at, 3) if self.first_at is not None
            and self.last_at is not None else None,
        }


def _ranges(numbers: list[int]) -> list[list[int]]:
    """[1,2,3,7] -> [[1,3],[7,7]]: lost sequence numbers as gaps a person can read."""
    out: list[list[int]] = []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out
