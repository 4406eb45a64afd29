"""The app node's resident emitter: a GET runs ``emit`` against Doppler's ingress and answers its
result, as the forked ``emit`` printed it (a loopback WebSocket server stands in for Doppler)."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from typing import Iterator

import pytest
from websockets.asyncio.server import serve

from harness.cf.apps import EmitEndpoint
from harness.protocol import envelope
from tests.unit.cf.conftest import http_server_in_a_thread

pytestmark = pytest.mark.unit


@pytest.fixture
def ingress() -> Iterator[tuple[str, list[bytes]]]:
    """A Doppler ingress on loopback: its URL and the messages it received."""
    received: list[bytes] = []
    ready, stop = threading.Event(), threading.Event()
    url: list[str] = []

    async def handler(ws) -> None:  # type: ignore[no-untyped-def]
        async for message in ws:
            received.append(message)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            url.append(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}")
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    ready.wait(5)
    yield url[0], received
    stop.set()
    thread.join(5)


@pytest.fixture
def emitter() -> Iterator[str]:
    yield from http_server_in_a_thread(EmitEndpoint)


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return dict(json.loads(answer.read()))


def test_a_get_emits_the_lines_and_answers_when_they_are_sent(emitter: str, ingress: tuple[str, list[bytes]]) -> None:
    url, received = ingress
    result = _get(f"{emitter}/emit?doppler={url}/ingress&app=app-1&count=5&start=40")
    assert result["event"] == "emitted" and result["count"] == 5 and result["start"] == 40
    logs = [envelope.as_log(envelope.decode(m)) for m in received]
    assert [(log.app_id, log.seq) for log in logs if log] == [("app-1", n) for n in range(40, 45)]


def test_an_emitter_that_cannot_reach_doppler_says_so(emitter: str) -> None:
    result = _get(f"{emitter}/emit?doppler=ws://127.0.0.1:1/ingress&app=app-1&count=1")
    assert result["event"] == "failed" and "ConnectionRefusedError" in str(result["error"])


def test_another_path_is_not_found(emitter: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        _get(f"{emitter}/other")
    assert err.value.code == 404


def test_an_emit_not_done_within_its_time_is_stopped_and_says_so(emitter: str, ingress: tuple[str, list[bytes]]) -> None:
    url, received = ingress
    result = _get(f"{emitter}/emit?doppler={url}/ingress&app=app-1&count=100&rate=20&within=1")
    assert result == {"event": "failed", "error": "not all sent within 1 s"}
    sent = len(received)
    assert 10 <= sent < 100
    threading.Event().wait(0.3)
    assert len(received) == sent  # stopped, not going on into the next attempt
