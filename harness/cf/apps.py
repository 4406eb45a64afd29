"""The apps behind the routers: an HTTP app that echoes what it received, and a log emitter."""

from __future__ import annotations

import asyncio
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from websockets.asyncio.client import connect

from harness.cf.settings import log_event
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
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = _echo  # noqa: N815

    def log_message(self, fmt: str, *args: object) -> None:
        log_event("app", "request", line=fmt % args, attempt=self.headers.get("X-Harness-Attempt"))


def serve_echo() -> None:
    port = int(os.environ.get("APP_PORT", "8080"))
    log_event("app", "listening", port=port)
    ThreadingHTTPServer(("0.0.0.0", port), EchoApp).serve_forever()


async def emit(doppler_url: str, app_id: str, count: int, rate: float, start: int = 0, size: int = 0,
               line_bytes: int = 0) -> dict[str, object]:
    """Send ``count`` sequence-numbered log envelopes at ``rate`` per second (0: as fast as possible)."""
    padding = "x" * size
    began = time.monotonic()
    async with connect(f"{doppler_url}/ingress", max_size=None, ping_interval=None) as ws:
        for i in range(start, start + count):
            # line_bytes: the whole line is exactly that long, a pattern a shifted chunk would change
            text = frames.log_line(i, line_bytes).decode().partition(" ")[2] if line_bytes else padding
            await ws.send(envelope.encode_log(app_id, i, text))
            if rate > 0:
                delay = began + (i - start + 1) / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
    elapsed = time.monotonic() - began
    return {"event": "emitted", "count": count, "start": start, "seconds": round(elapsed, 3)}


def emit_cli(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="emit", description="send sequence-numbered logs to Doppler")
    parser.add_argument("--doppler", default="ws://doppler:8082")
    parser.add_argument("--app", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0, help="envelopes per second; 0 = unthrottled")
    parser.add_argument("--start", type=int, default=0, help="first sequence number")
    parser.add_argument("--size", type=int, default=0, help="bytes of padding per line")
    parser.add_argument("--line-bytes", type=int, default=0,
                        help="each log line exactly this long (harness.protocol.frames.log_line); overrides --size")
    args = parser.parse_args(argv)
    result = asyncio.run(emit(args.doppler, args.app, args.count, args.rate, args.start, args.size, args.line_bytes))
    print(json.dumps(result), flush=True)
