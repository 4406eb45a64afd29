"""Today's log paths without sockets: v2 JSON envelopes, Log Cache's read API, the CLI's walk, SSE."""

from __future__ import annotations

import base64

import pytest

from harness.protocol import envelope
from harness.protocol import loggregator_v2 as v2

APP = "6a1b9a0e-2b3c-4d5e-8f90-1a2b3c4d5e6f"
S = 1_000_000_000


def env(seq: int, ts: int) -> dict[str, object]:
    made = v2.from_dropsonde(envelope.encode_log(APP, seq, now_ns=ts))
    assert made is not None
    return made


def test_dropsonde_log_becomes_a_v2_json_envelope_as_log_cache_writes_it() -> None:
    out = env(7, 123)
    assert out["timestamp"] == "123" and out["source_id"] == APP and out["instance_id"] == "0"
    assert out["tags"] == {"source_type": "APP", "origin": envelope.ORIGIN}  # type: ignore[comparison-overlap]
    assert base64.b64decode(out["log"]["payload"]) == b"seq=7"  # type: ignore[index]
    assert out["log"]["type"] == "OUT"  # type: ignore[index]
    assert v2.as_log(out) == v2.V2Log(7, 123, b"seq=7")


def test_rlp_gateway_writes_lower_camel_case() -> None:
    out = v2.from_dropsonde(envelope.encode_log(APP, 1), camel=True)
    assert out is not None and "sourceId" in out and "source_id" not in out and v2.source_of(out) == APP


def test_batches_of_log_cache_and_rlp_gateway_answers() -> None:
    e = env(1, 5)
    assert v2.batch_of({"envelopes": {"batch": [e]}}) == [e]
    assert v2.batch_of({"batch": [e]}) == [e]
    assert v2.batch_of({"envelopes": {}}) == []
    with pytest.raises(ValueError):
        v2.batch_of(["not", "a", "batch"])


def test_read_query_parses_log_cache_parameters_and_refuses_what_it_refuses() -> None:
    q = v2.ReadQuery.parse("start_time=10&end_time=20&limit=5&envelope_types=LOG&descending=true")
    assert q == v2.ReadQuery(10, 20, 5, ("log",), True)
    assert v2.ReadQuery.parse("") == v2.ReadQuery()
    assert v2.ReadQuery.parse(q.to_query()) == q
    with pytest.raises(v2.QueryError, match="<= 1000"):
        v2.ReadQuery.parse("limit=1001")
    with pytest.raises(v2.QueryError):
        v2.ReadQuery.parse("envelope_types=BOGUS")


def test_store_reads_a_window_oldest_first_or_newest_first_and_prunes_the_oldest() -> None:
    store = v2.EnvelopeStore(max_per_source=4)
    for i in range(6):
        store.add(env(i, (i + 1) * S))
    seqs = lambda q: [v2.as_log(e).seq for e in store.read(APP, q, now_ns=100 * S)]  # type: ignore[union-attr]  # noqa: E731
    assert seqs(v2.ReadQuery()) == [2, 3, 4, 5]  # 0 and 1 pruned
    assert seqs(v2.ReadQuery(start_ns=4 * S, end_ns=6 * S)) == [3, 4]  # end is exclusive
    assert seqs(v2.ReadQuery(limit=1, descending=True)) == [5]
    assert seqs(v2.ReadQuery(start_ns=10 * S)) == []
    assert store.read("other-source", v2.ReadQuery(), 100 * S) == []


def test_cli_walk_starts_one_second_before_the_newest_and_holds_back_the_last_two_seconds() -> None:
    walk = v2.CliWalk()
    assert walk.next_query() == v2.ReadQuery(limit=1, descending=True)
    assert walk.take([], now_ns=10 * S) == [] and walk.phase == "latest"  # nothing yet: ask again
    assert walk.take([env(0, 10 * S)], now_ns=10 * S) == []
    assert walk.phase == "walk" and walk.start_ns == 9 * S
    assert walk.next_query() == v2.ReadQuery(start_ns=9 * S, types=("log",))
    batch = [env(0, 10 * S), env(1, 11 * S), env(2, 12 * S)]
    shown = walk.take(batch, now_ns=13 * S + 1)  # 12 s is newer than now - 2 s: not yet
    assert [v2.as_log(e).seq for e in shown] == [0, 1]  # type: ignore[union-attr]
    assert walk.start_ns == 11 * S + 1
    assert [v2.as_log(e).seq for e in walk.take([env(2, 12 * S)], now_ns=15 * S)] == [2]  # type: ignore[union-attr]


def test_sse_parser_splits_events_across_chunks_and_names_them() -> None:
    parser = v2.SseParser()
    wire = v2.sse_event('{"batch": []}') + v2.sse_event("1700000000", "heartbeat") + b": comment\n\n"
    events = parser.feed(wire[:7]) + parser.feed(wire[7:30]) + parser.feed(wire[30:])
    assert events == [v2.SseEvent("message", '{"batch": []}'), v2.SseEvent("heartbeat", "1700000000")]
    assert parser.feed(b"data: a\r\ndata: b\r\n\r\n") == [v2.SseEvent("message", "a\nb")]


def test_rlp_gateway_needs_a_query_with_an_envelope_type() -> None:
    assert str(v2.rlp_selector_error("")) == "query cannot be empty"
    assert str(v2.rlp_selector_error("source_id=x")) == "query must provide at least one envelope type"
    assert v2.rlp_selector_error(f"log&source_id={APP}") is None
    assert v2.rlp_selector_error("counter.name=cpu") is None
