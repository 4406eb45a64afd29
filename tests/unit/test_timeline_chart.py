"""Delivery timeline charts: the gap placed in time from the attempt's own arrivals, labelled right."""

from __future__ import annotations

from harness import timeline_chart
from harness.protocol.delivery import DeliveryLedger

RATE = 200.0


def client_result(redial: bool = True) -> dict[str, object]:
    """A client result as harness/cf/client.py emits it: 3000 envelopes, 212 lost from seq 420,
    the break learned at 2.2 s and the re-dial connected at 3.2 s (on the run's clock)."""
    ledger = DeliveryLedger(3000, origin=0.0)
    for seq in range(420):
        ledger.record(seq, at=0.1 + seq / RATE)
    for seq in range(632, 3000):
        ledger.record(seq, at=3.4 + (seq - 632) / RATE)
    breaks = [{"at_s": 2.2, "close_code": 1006, "redialled_at_s": 3.2 if redial else None}]
    return {"event": "result", "outcome": {"breaks": breaks}, "delivery": ledger.summary(),
            "timeline": ledger.timeline.as_json()}


def test_detail_keeps_the_timeline_breaks_and_lost_ranges() -> None:
    detail = timeline_chart.detail(client_result())
    assert detail is not None
    assert detail["lost_ranges"] == [[420, 631]] and detail["lost"] == 212
    assert detail["breaks"] == [{"at_s": 2.2, "redialled_at_s": 3.2, "close_code": 1006}]
    assert len(detail["points"]) <= 500
    assert timeline_chart.detail({"event": "result", "outcome": {}}) is None  # no arrivals kept: nothing to draw


def test_the_gap_is_placed_between_the_arrivals_on_both_sides() -> None:
    (gap,) = timeline_chart.gaps(timeline_chart.detail(client_result()) or {})
    assert (gap["lo"], gap["hi"], gap["lost"]) == (420, 631, 212)
    assert gap["t0"] == round(0.1 + 419 / RATE, 3) and gap["t1"] == 3.4
    assert gap["length_s"] == round(3.4 - (0.1 + 419 / RATE), 3)


def test_the_chart_and_its_line_name_the_gap_and_the_redial() -> None:
    view = timeline_chart.view(timeline_chart.detail(client_result()) or {}, "router_death", "router dies")
    assert view["line"] == "gap 1.2 s, 212 lost, re-dialled at 3.2 s"
    assert [b["label"] for b in view["bands"]] == ["1.2 s, 212 lost"]
    assert [m["kind"] for m in view["markers"]] == ["break", "redial"]
    band, (brk, redial) = view["bands"][0], view["markers"]
    assert band["x"] < brk["x"] < redial["x"] < band["x"] + band["w"]  # learned of the break inside the gap
    assert len(view["dots"]) == len(timeline_chart.detail(client_result())["points"])  # type: ignore[index]


def test_a_break_without_redial_says_so() -> None:
    view = timeline_chart.view(timeline_chart.detail(client_result(redial=False)) or {}, "crafted_rst", "rst")
    assert view["line"] == "gap 1.2 s, 212 lost, broke at 2.2 s, no re-dial"
    assert [m["kind"] for m in view["markers"]] == ["break"]


def test_a_stall_that_lost_nothing_is_a_band_too() -> None:
    ledger = DeliveryLedger(400, origin=0.0)
    for seq in range(400):
        ledger.record(seq, at=seq / RATE + (5.0 if seq >= 200 else 0.0))
    detail = timeline_chart.detail({"delivery": ledger.summary(), "timeline": ledger.timeline.as_json(),
                                    "outcome": {"breaks": []}})
    view = timeline_chart.view(detail or {}, "kernel_pause", "paused LB")
    assert view["line"] == "stall 5.0 s"
    assert [b["label"] for b in view["bands"]] == ["5.0 s stall"]


def test_a_steady_stream_has_no_band() -> None:
    """Negative control: nothing lost, no pause: the chart draws dots only and says so."""
    ledger = DeliveryLedger(400, origin=0.0)
    for seq in range(400):
        ledger.record(seq, at=seq / RATE)
    detail = timeline_chart.detail({"delivery": ledger.summary(), "timeline": ledger.timeline.as_json()})
    view = timeline_chart.view(detail or {}, "kernel_loss", "loss")
    assert view["bands"] == [] and view["markers"] == [] and view["line"] == "no gap"


def test_the_gap_label_sits_beside_its_band_inside_the_chart() -> None:
    view = timeline_chart.view(timeline_chart.detail(client_result()) or {}, "router_death", "router dies")
    band = view["bands"][0]
    assert band["anchor"] == "start" and band["label_x"] == round(band["x"] + band["w"] + 3, 1)
