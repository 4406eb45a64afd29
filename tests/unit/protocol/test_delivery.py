from __future__ import annotations

from harness.protocol.delivery import DeliveryLedger, percentile


def test_complete_in_order_stream() -> None:
    ledger = DeliveryLedger(5)
    for n in range(5):
        ledger.record(n, latency_ms=float(n))
    s = ledger.summary()
    assert ledger.complete and (s["lost"], s["duplicates"], s["out_of_order"]) == (0, 0, 0)
    assert s["latency_ms_p50"] == 2.0 and s["latency_ms_p99"] == 4.0


def test_gap_duplicates_and_reordering_are_counted() -> None:
    ledger = DeliveryLedger(10)
    for n in (0, 1, 5, 4, 4, 9):
        ledger.record(n)
    s = ledger.summary()
    assert not ledger.complete
    assert s["lost_ranges"] == [[2, 3], [6, 8]] and s["lost"] == 5
    assert s["duplicates"] == 1 and s["out_of_order"] == 1 and s["unique"] == 5


def test_percentile_of_empty_is_none() -> None:
    assert percentile([], 50) is None
