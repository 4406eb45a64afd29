"""The TC's timings set on the running TC (``/harness/timings``), so variant cells keep one TC."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.error
import urllib.request
from typing import Iterator

import pytest
from websockets.asyncio.server import serve

from harness.cf.trafficcontroller import Timings, TrafficController, serve_options, timings_from_query


@pytest.mark.parametrize(("query", "expected"), [
    ("", Timings(15, 30, 5)),  # nothing asked: the real defaults
    ("keepalive_interval=1&keepalive_timeout=4", Timings(1, 4, 5)),
    ("slow_consumer=2", Timings(15, 30, 2)),
])
def test_a_query_sets_what_it_names_and_the_rest_goes_back_to_the_defaults(query: str, expected: Timings) -> None:
    assert timings_from_query(query) == expected


@pytest.mark.parametrize(("query", "why"), [
    ("keepalive=1", "unknown timing(s) keepalive"),
    ("keepalive_interval=soon", "is not a number"),
    ("keepalive_timeout=0", "more than 0 s"),
    ("slow_consumer=", "is not a number"),
])
def test_a_query_it_cannot_follow_says_why(query: str, why: str) -> None:
    answer = timings_from_query(query)
    assert isinstance(answer, str) and why in answer


@pytest.fixture
def tc() -> Iterator[tuple[TrafficController, int]]:
    controller = TrafficController("http://127.0.0.1:9", "http://127.0.0.1:9", [], Timings(1, 4, 5))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    ready, loop = threading.Event(), asyncio.new_event_loop()

    async def run() -> None:
        async with serve(controller.handle, "127.0.0.1", port, **serve_options(controller)):
            ready.set()
            await asyncio.Future()

    threading.Thread(target=lambda: loop.run_until_complete(run()), daemon=True).start()
    assert ready.wait(10)
    yield controller, port


def test_the_running_tc_takes_new_timings_and_refuses_bad_ones(tc: tuple[TrafficController, int]) -> None:
    controller, port = tc
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/harness/timings?keepalive_interval=30", timeout=10) as r:
        assert json.loads(r.read()) == {"keepalive_interval": 30.0, "keepalive_timeout": 30.0, "slow_consumer": 5.0}
    assert controller.timings == Timings(30, 30, 5)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/harness/timings?keepalive_interval=-1", timeout=10)
    assert refused.value.code == 400
    assert controller.timings == Timings(30, 30, 5)  # unchanged by a refused query


def test_the_harness_endpoints_answer_on_the_side_port_only(tc: tuple[TrafficController, int]) -> None:
    """On the API port (the one routers reach) they are 404, as on the real TC: a client through an
    LB cannot change the TC's timings or read its event list."""
    controller, port = tc
    controller.side_port = port + 1  # the loopback server above plays the API port now
    for path in ("/harness/timings?keepalive_interval=30", "/harness/events", "/harness/profile?set=current"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10)
        assert refused.value.code == 404, path
    assert controller.timings == Timings(1, 4, 5) and controller.profile == "classic"
