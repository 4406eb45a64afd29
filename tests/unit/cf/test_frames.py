"""The frame scenarios end to end on loopback (no Docker): the Traffic Controller stand-in's side
(``/harness/frames/<scenario>``) against the ``frames`` client, judged by the same function the
matrix checks use; and each ``mangle`` control makes the judgement report its own fault."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from websockets.asyncio.server import serve

from harness.cf.trafficcontroller import Timings, TrafficController, serve_options
from harness.protocol.frames import SCENARIOS, Script, judge

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tc() -> Iterator[tuple[TrafficController, int]]:
    controller = TrafficController("http://127.0.0.1:9", "http://127.0.0.1:9", [], Timings(15, 30, 5))
    port, ready = _free_port(), threading.Event()
    loop = asyncio.new_event_loop()

    async def run() -> None:
        async with serve(controller.handle, "127.0.0.1", port, **serve_options(controller)):
            ready.set()
            await asyncio.Future()

    thread = threading.Thread(target=lambda: loop.run_until_complete(run()), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield controller, port


def play(tc: tuple[TrafficController, int], scenario: str, *args: str) -> tuple[Script, dict[str, Any], list[Any]]:
    controller, port = tc
    attempt = secrets.token_hex(6)
    out = subprocess.run([sys.executable, "-m", "harness.cf", "frames", "--endpoint", f"ws://127.0.0.1:{port}",
                          "--scenario", scenario, *args], capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env={**os.environ, "HARNESS_ATTEMPT": attempt})
    result = [json.loads(line) for line in out.stdout.splitlines() if '"result"' in line]
    assert result, out.stderr
    events = [e for e in list(controller.events) if e.get("attempt") == attempt]
    return Script(scenario, attempt), result[-1], events


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_arrives_unchanged_straight_to_the_tc(tc: tuple[TrafficController, int], scenario: str) -> None:
    script, result, events = play(tc, scenario, *(["--casing", "odd"] if scenario == "casing" else []))
    assert result["outcome"]["connected"], result
    verdict = judge(script, result["record"], events)
    assert verdict.fault is None, verdict


@pytest.mark.parametrize(("scenario", "fault"), [("fragments", "message"), ("pingpong", "control"),
                                                 ("close-1008", "close"), ("pipelined", "pipelined")])
def test_each_mangled_script_is_reported_as_its_own_fault(tc: tuple[TrafficController, int], scenario: str,
                                                          fault: str) -> None:
    script, result, events = play(tc, scenario, "--mangle")
    assert judge(script, result["record"], events).fault == fault


def test_a_handshake_without_the_upgrade_token_is_refused(tc: tuple[TrafficController, int]) -> None:
    _, result, _ = play(tc, "casing", "--casing", "no-upgrade-token")
    assert result["outcome"]["handshake_status"] == 400, result


def test_an_offer_of_permessage_deflate_is_declined_as_the_real_tc_does(tc: tuple[TrafficController, int]) -> None:
    """gorilla's Upgrader without EnableCompression answers the 101 with no extension; the frames
    then cross uncompressed (RSV1 clear), as LBs and clients see them behind a real TC."""
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{tc[1]}/harness/frames/pingpong", compression="deflate", open_timeout=10) as ws:
        assert ws.request is not None and "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        assert ws.response is not None and "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.protocol.extensions == []
