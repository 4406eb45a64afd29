"""Doppler stand-in: takes envelopes from emitters and streams them to Traffic Controllers.

Real Doppler speaks gRPC to TC; this one uses a WebSocket per subscription (the seed's path 1),
with the same routing rules: app streams get envelopes carrying their app ID, firehose
subscriptions sharing an ID each get a random share, and each subscription has a 1000-envelope
buffer that drops the oldest entry when full.

DOPPLER_HOP: the subscriptions (TC, Log Cache, RLP gateway) negotiate no permessage-deflate. The
real hop is gRPC without compression; ``websockets`` compresses by default, which cost zlib on
every envelope, at the Doppler once per subscriber and again at each reader.
"""

from __future__ import annotations

import asyncio
import collections
import random
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers as WsHeaders
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from harness.cf.settings import env_float, log_event
from harness.cf.sending import send_frames
from harness.protocol import envelope, multipart

RECENT_PER_APP = 1000


@dataclass(eq=False)
class Subscription:
    app_id: str | None  # None: firehose
    shard_id: str
    buffer: collections.deque[bytes]
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0

    def offer(self, data: bytes) -> None:
        if len(self.buffer) == self.buffer.maxlen:
            self.dropped += 1
        self.buffer.append(data)
        self.ready.set()


class Doppler:
    def __init__(self, buffer_size: int) -> None:
        self.buffer_size = buffer_size
        self.subscriptions: set[Subscription] = set()
        self.recent: dict[str, collections.deque[bytes]] = collections.defaultdict(
            lambda: collections.deque(maxlen=RECENT_PER_APP))
        self.ingested = 0

    def route(self, data: bytes) -> None:
        env = envelope.decode(data)
        app_id = envelope.app_id_of(env)
        self.ingested += 1
        if app_id:
            self.recent[app_id].append(data)
        shards: dict[str, list[Subscription]] = collections.defaultdict(list)
        for sub in self.subscriptions:
            if sub.app_id is not None:
                if sub.app_id == app_id:
                    sub.offer(data)
            elif sub.shard_id:
                shards[sub.shard_id].append(sub)
            else:
                sub.offer(data)
        for members in shards.values():
            random.choice(members).offer(data)

    async def handle(self, ws: ServerConnection) -> None:
        url = urlsplit(ws.request.path)
        if url.path == "/ingress":
            await self._ingest(ws)
        elif url.path == "/subscribe":
            query = parse_qs(url.query)
            await self._stream(ws, query.get("app", [None])[0], query.get("shard", [""])[0])

    async def _ingest(self, ws: ServerConnection) -> None:
        async for message in ws:
            if isinstance(message, bytes):
                self.route(message)
                if self.ingested % 64 == 0:
                    await asyncio.sleep(0)  # let subscribers drain now and then, as Doppler's goroutines would

    async def _stream(self, ws: ServerConnection, app_id: str | None, shard_id: str) -> None:
        sub = Subscription(app_id, shard_id, collections.deque(maxlen=self.buffer_size))
        self.subscriptions.add(sub)
        log_event("doppler", "subscribed", app=app_id, shard=shard_id, peer=ws.remote_address[0])
        try:
            while True:
                await sub.ready.wait()
                sub.ready.clear()
                while sub.buffer:
                    batch = [sub.buffer.popleft() for _ in range(min(256, len(sub.buffer)))]
                    await send_frames(ws, batch)
        except ConnectionClosed:
            pass
        finally:
            self.subscriptions.discard(sub)
            log_event("doppler", "unsubscribed", app=app_id, shard=shard_id, dropped=sub.dropped)

    def http(self, ws: ServerConnection, request: Request) -> Response | None:
        """Plain HTTP endpoints: health and the recent-logs buffer (Log Cache's role)."""
        url = urlsplit(request.path)
        if url.path == "/health":
            return ws.respond(200, f"ok subscriptions={len(self.subscriptions)} ingested={self.ingested}\n")
        if url.path.startswith("/recent/"):
            app_id = url.path.removeprefix("/recent/")
            limit = int(parse_qs(url.query).get("limit", ["1000"])[0])
            ctype, body = multipart.encode(list(self.recent.get(app_id, ()))[-limit:])
            return Response(200, "OK", WsHeaders({"Content-Type": ctype, "Content-Length": str(len(body))}), body)
        return None


async def main() -> None:
    doppler = Doppler(int(env_float("DOPPLER_EGRESS_BUFFER", 1000)))
    port = int(env_float("DOPPLER_PORT", 8082))
    async with serve(doppler.handle, "0.0.0.0", port, process_request=doppler.http, max_size=None,
                     ping_interval=None, compression=None):  # DOPPLER_HOP (above)
        log_event("doppler", "listening", port=port)
        await asyncio.Future()
