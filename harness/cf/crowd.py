"""Many ``cf logs`` streams at once from one process: how many concurrent streams an LB carries.

Opens ``--streams`` app streams (each its own TCP connection and WebSocket handshake, with the
attempt header), reports once all are up, then counts what each receives until every stream has
``--expect`` envelopes or ``--timeout`` passes. A stream that could not be opened or that ends early
is counted with its reason, so the LB's limit shows up as a number and an error, not as a hang.

``python3 -m harness.cf crowd --endpoint ws://doppler.sys.example.com:80 --app <guid> --streams 2000``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from harness.protocol import envelope

ATTEMPT = os.environ.get("HARNESS_ATTEMPT", "")


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "attempt": ATTEMPT, **fields}), flush=True)


async def _open(url: str, token: str, gate: asyncio.Semaphore) -> ClientConnection | str:
    async with gate:  # bounded handshakes in flight: a burst of SYNs is not what is being measured
        try:
            return await connect(url, additional_headers={"Authorization": token, "X-Harness-Attempt": ATTEMPT},
                                 open_timeout=30, ping_interval=None, max_size=None, compression=None)
        except Exception as exc:  # noqa: BLE001 (each failure is counted by its kind)
            return f"{type(exc).__name__}: {exc}"[:160]


async def _count(ws: ClientConnection, expect: int, deadline: float) -> tuple[int, str | None]:
    got = 0
    try:
        while got < expect and (left := deadline - time.monotonic()) > 0:
            async with asyncio.timeout(left):
                message = await ws.recv()
            if isinstance(message, bytes) and envelope.as_log(envelope.decode(message)):
                got += 1
    except TimeoutError:
        pass
    except ConnectionClosed as exc:
        return got, f"closed {exc.rcvd.code if exc.rcvd else 1006}"
    return got, None


async def crowd(url: str, token: str, streams: int, expect: int, timeout: float) -> dict[str, Any]:
    began = time.monotonic()
    gate = asyncio.Semaphore(64)
    opened = await asyncio.gather(*(_open(url, token, gate) for _ in range(streams)))
    live = [ws for ws in opened if not isinstance(ws, str)]
    failures = collections.Counter(ws for ws in opened if isinstance(ws, str))
    say("connected", streams=len(live), failed=sum(failures.values()), open_s=round(time.monotonic() - began, 2))
    deadline = time.monotonic() + timeout
    counts = await asyncio.gather(*(_count(ws, expect, deadline) for ws in live))
    await asyncio.gather(*(ws.close() for ws in live), return_exceptions=True)
    ends = collections.Counter(reason for _, reason in counts if reason)
    return {"event": "result", "attempt": ATTEMPT, "requested": streams, "opened": len(live),
            "complete": sum(1 for got, _ in counts if got >= expect), "delivered": sum(got for got, _ in counts),
            "expected_each": expect, "open_failures": dict(failures.most_common(5)), "ended_early": dict(ends)}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="crowd", description="many concurrent app log streams")
    parser.add_argument("--endpoint", required=True, help="ws(s)://host:port of the Traffic Controller route")
    parser.add_argument("--app", required=True)
    parser.add_argument("--token", default="bearer dev")
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--expect", type=int, default=5, help="envelopes each stream must receive")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args(argv)
    result = asyncio.run(crowd(f"{args.endpoint}/apps/{args.app}/stream", args.token, args.streams, args.expect,
                               args.timeout))
    print(json.dumps(result), flush=True)
