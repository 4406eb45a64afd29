"""The apps behind the routers: an HTTP app that echoes what it received, and a log emitter."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.client import connect

from harness.cf.sending import send_frames
from harness.cf.settings import DOPPLER_INGRESS, EMIT_PORT, log_event
from harness.protocol import envelope, frames


class EchoApp(BaseHTTPRequestHandler):
    """Answers every request with the request line, headers (wire order and casing) and peer."""

    server_version = "echo-app"

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length", 0) or 0)
        body = self.rfile.read(length) if length else b""
        data = json.dumps({
            "method": self.command, "path": self.path, "peer": self.client_address[0],
            "headers": [[k, v] for k, v in self.headers.items()], "body_bytes": len(body),
        }).encode()
        _answer_json(self, data)

    do_GET = do_POST = do_PUT = _echo  # noqa: N815

    def log_message(self, fmt: str, *args: object) -> None:
        log_event("app", "request", line=fmt % args, attempt=self.headers.get("X-Harness-Attempt"))


class EmitEndpoint(BaseHTTPRequestHandler):
    """The app node's resident emitter, on its loopback only (``EMIT_PORT``): the harness asks it
    through the node's agent (a GET the agent answers in its loop, ``harness.cf.nodeget``) instead of
    forking ``emit`` (~15 ms of CPU a fork on the loaded cores, ~500 emits a qualification); the real
    cell's loggregator agent is resident too. ``python3 -m harness.cf emit`` stays, for a shell.

    ``GET /emit?app=&count=&rate=&start=&size=&line_bytes=&doppler=&within=``: runs ``emit``, stopped
    after ``within`` seconds, and answers
    its result (JSON); a failure answers ``{"event": "failed", "error": ...}``, with status 200 so
    that the harness's ``curl -sf`` shows it."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        if parts.path != "/emit":
            self.send_error(404)
            return
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        within = float(query.get("within", 3600))
        try:
            sending = emit(query.get("doppler", DOPPLER_INGRESS), query["app"], int(query.get("count", 1000)),
                           float(query.get("rate", 0)), int(query.get("start", 0)), int(query.get("size", 0)),
                           int(query.get("line_bytes", 0)))
            result = asyncio.run(asyncio.wait_for(sending, within))
        except TimeoutError:  # stopped: it must not go on into the harness's next attempt
            result = {"event": "failed", "error": f"not all sent within {within:g} s"}
        except Exception as exc:  # noqa: BLE001  the harness reports it, with the emitter's words
            result = {"event": "failed", "error": repr(exc)}
        _answer_json(self, json.dumps(result).encode())

    def log_message(self, fmt: str, *args: object) -> None:
        pass


def _answer_json(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    """A 200 with ``data`` as its JSON body: the echo app's answer and the emitter's."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def serve_echo() -> None:
    """The echo app, and the resident emitter next to it (listening before the app says it is)."""
    emitter = ThreadingHTTPServer(("127.0.0.1", EMIT_PORT), EmitEndpoint)
    threading.Thread(target=emitter.serve_forever, daemon=True).start()
    port = int(os.environ.get("APP_PORT", "8080"))
    log_event("app", "listening", port=port, emit_port=EMIT_PORT)
    ThreadingHTTPServer(("0.0.0.0", port), EchoApp).serve_forever()


def _text(seq: int, padding: str, line_bytes: int) -> str:
    """The line after ``seq=<n> ``: ``line_bytes`` makes the whole line exactly that long, in a
    pattern a shifted or dropped chunk would change; else ``padding``."""
    return frames.log_line(seq, line_bytes).decode().partition(" ")[2] if line_bytes else padding


BATCH = 256  # envelopes written together, as real agents batch envelopes to Doppler (gRPC batch)


async def emit(doppler_url: str, app_id: str, count: int, rate: float, start: int = 0, size: int = 0,
               line_bytes: int = 0) -> dict[str, object]:
    """Send ``count`` sequence-numbered log envelopes at ``rate`` per second (0: as fast as possible).

    Each envelope is its own WebSocket message; the ones due at the same moment are written together
    (one flush), so the emitter keeps up with the pace instead of paying a round of the event loop each."""
    padding = "x" * size
    began = time.monotonic()
    sent = 0
    async with connect(f"{doppler_url}/ingress", max_size=None, ping_interval=None) as ws:
        while sent < count:
            due = count - sent if rate <= 0 else int((time.monotonic() - began) * rate) + 1 - sent
            if due <= 0:
                await asyncio.sleep(sent / rate - (time.monotonic() - began))  # the next one is due then
                continue
            batch = min(due, BATCH, count - sent)
            seqs = range(start + sent, start + sent + batch)
            await send_frames(ws, [envelope.encode_log(app_id, seq, _text(seq, padding, line_bytes)) for seq in seqs])
            sent += batch
    elapsed = time.monotonic() - began
    return {"event": "emitted", "count": count, "start": start, "seconds": round(elapsed, 3)}


def emit_cli(argv: list[str]) -> None:
    args = emit_parser().parse_args(argv)
    result = asyncio.run(emit(args.doppler, args.app, args.count, args.rate, args.start, args.size, args.line_bytes))
    print(json.dumps(result), flush=True)


@functools.cache
def emit_parser() -> argparse.ArgumentParser:
    """Built once: the agent builds it before it forks an emitter (as ``client.parser``)."""
    parser = argparse.ArgumentParser(prog="emit", description="send sequence-numbered logs to Doppler")
    parser.add_argument("--doppler", default=DOPPLER_INGRESS)
    parser.add_argument("--app", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0, help="envelopes per second; 0 = unthrottled")
    parser.add_argument("--start", type=int, default=0, help="first sequence number")
    parser.add_argument("--size", type=int, default=0, help="bytes of padding per line")
    parser.add_argument("--line-bytes", type=int, default=0,
                        help="each log line exactly this long (harness.protocol.frames.log_line); overrides --size")
    return parser
