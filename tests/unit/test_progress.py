"""Progress lines: a cell brought up, a cell completed (pure bookkeeping)."""

from __future__ import annotations

from harness import progress

PAIRS = [("tcp-same-port", "haproxy"), ("tcp-same-port-proxy", "haproxy"), ("http-only-elb", "nginx"),
         ("http-only-elb", "nginx-no-upgrade"), ("http-upgrade-faults", "nginx")]


def test_a_node_id_belongs_to_the_longest_matching_cell() -> None:
    assert progress.cell_of("t.py::test_logs[tcp-same-port-proxy-haproxy]", PAIRS) == ("tcp-same-port-proxy", "haproxy")
    assert progress.cell_of("t.py::test_logs[tcp-same-port-haproxy]@tcp-same-port-haproxy", PAIRS) == (
        "tcp-same-port", "haproxy")
    assert progress.cell_of("t.py::test_x[http-only-elb-nginx-no-upgrade]", PAIRS) == ("http-only-elb",
                                                                                      "nginx-no-upgrade")
    assert progress.cell_of("t.py::test_t[http-upgrade-faults-nginx-fault-client-lb-reset_peer]", PAIRS) == (
        "http-upgrade-faults", "nginx")
    assert progress.cell_of("tests/unit/test_report.py::test_x", PAIRS) is None


def test_one_line_when_a_cell_comes_up_and_one_when_its_last_test_ends() -> None:
    ids = ["t.py::a[tcp-same-port-haproxy]", "t.py::b[tcp-same-port-haproxy]", "t.py::a[http-only-elb-nginx]"]
    run = progress.Progress(PAIRS)
    run.collected(ids)
    assert run.started(ids[0], now=100.0) == "[up] tcp-same-port x haproxy: bringing up the cell (2 tests)"
    assert run.started(ids[1], now=101.0) is None
    run.recorded(ids[0], ["pass"])
    assert run.finished(ids[0], now=105.0) is None
    run.recorded(ids[1], ["as_predicted", "mismatch"])
    assert run.finished(ids[1], now=112.0) == "[1/2] tcp-same-port x haproxy: 2/3 as predicted, 1 MISMATCH, 12 s"
    assert run.finished(ids[1], now=113.0) is None  # reported once


def test_tally_names_every_status_that_is_not_as_predicted() -> None:
    assert progress.tally(["pass"] * 7) == "7/7 as predicted"
    assert progress.tally([]) == "no check recorded"
    assert progress.tally(["pass", "error", "n/a", "skipped"]) == "1/4 as predicted, 1 error, 1 n/a, 1 skipped"
