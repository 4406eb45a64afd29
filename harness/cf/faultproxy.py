"""A Toxiproxy-API-compatible TCP fault proxy (the Toxiproxy server binary cannot be had here).

Implements the HTTP API on :8474 that toxiproxy-python and the Toxiproxy CLI use: ``/version``,
``/proxies`` (GET/POST), ``/populate``, ``/proxies/{p}`` (GET/POST/DELETE), ``/proxies/{p}/toxics``
(GET/POST), ``/proxies/{p}/toxics/{t}`` (GET/POST/DELETE), ``/reset``; status codes 200/201/204,
404 unknown, 409 exists, 400 bad body or toxic type. Toxics: latency (+jitter), bandwidth,
slow_close, timeout, reset_peer, slicer, limit_data, each upstream or downstream with a toxicity
rolled once per connection, and applied to live connections as soon as they are added.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from harness.cf.settings import log_event
from harness.cf.streams import read_head

VERSION = "2.12.0-harness"
TOXIC_DEFAULTS: dict[str, dict[str, int]] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Toxic:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "stream": self.stream, "toxicity": self.toxicity,
                "attributes": self.attributes}


@dataclass(eq=False)
class Link:
    """One client connection through a proxy: two directions, each with its own toxic state."""

    client: tuple[asyncio.StreamReader, asyncio.StreamWriter]
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter]
    rolls: dict[str, bool] = field(default_factory=dict)  # toxic name -> applies to this link
    sent: dict[str, int] = field(default_factory=lambda: {"upstream": 0, "downstream": 0})
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def applies(self, toxic: Toxic) -> bool:
        if toxic.name not in self.rolls:
            self.rolls[toxic.name] = random.random() < toxic.toxicity
        return self.rolls[toxic.name]

    def reset(self) -> None:
        """Close both sockets with SO_LINGER 0: the peers see a TCP RST."""
        for _, writer in (self.client, self.upstream):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            writer.transport.abort()

    def close(self) -> None:
        for _, writer in (self.client, self.upstream):
            writer.close()


@dataclass(eq=False)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool = True
    toxics: dict[str, Toxic] = field(default_factory=dict)
    server: asyncio.Server | None = None
    links: set[Link] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream, "enabled": self.enabled,
                "toxics": [t.as_json() for t in self.toxics.values()]}

    def active(self, link: Link, stream: str, kind: str) -> Toxic | None:
        for toxic in self.toxics.values():
            if toxic.type == kind and toxic.stream == stream and link.applies(toxic):
                return toxic
        return None

    def notify(self) -> None:
        for link in self.links:
            link.changed.set()

    async def start(self) -> None:
        host, port = self.listen.rsplit(":", 1)
        self.server = await asyncio.start_server(self._accept, host or "0.0.0.0", int(port))
        sock = self.server.sockets[0].getsockname()
        self.listen = f"{host or '0.0.0.0'}:{sock[1]}"

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            self.server = None
        for link in list(self.links):
            link.close()
        self.links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = self.upstream.rsplit(":", 1)
        try:
            up = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)
        except (OSError, TimeoutError):
            writer.close()
            return
        if not self.enabled or self.server is None:  # disabled while this connection was dialling
            writer.close()
            up[1].close()
            return
        link = Link((reader, writer), up)
        self.links.add(link)
        log_event("faultproxy", "link_open", proxy=self.name, peer=writer.get_extra_info("peername")[0])
        pumps = [asyncio.create_task(self._pump(link, reader, up[1], "upstream")),
                 asyncio.create_task(self._pump(link, up[0], writer, "downstream")),
                 asyncio.create_task(self._supervise(link))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            self.links.discard(link)
            link.close()

    async def _supervise(self, link: Link) -> None:
        """Toxics that act on the connection rather than on data: reset_peer and timeout."""
        while True:
            for stream in ("upstream", "downstream"):
                if toxic := self.active(link, stream, "reset_peer"):
                    await asyncio.sleep(toxic.attributes["timeout"] / 1000)
                    log_event("faultproxy", "reset_peer", proxy=self.name)
                    link.reset()
                    return
                if (toxic := self.active(link, stream, "timeout")) and toxic.attributes["timeout"] > 0:
                    await asyncio.sleep(toxic.attributes["timeout"] / 1000)
                    if self.toxics.get(toxic.name) is toxic:
                        log_event("faultproxy", "timeout_close", proxy=self.name)
                        link.close()
                        return
            link.changed.clear()
            await link.changed.wait()

    async def _pump(self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stream: str) -> None:
        try:
            while True:
                chunk = await reader.read(32768)
                while self.active(link, stream, "timeout"):  # hold data until the toxic goes away
                    link.changed.clear()
                    await link.changed.wait()
                if not chunk:
                    if toxic := self.active(link, stream, "slow_close"):
                        await asyncio.sleep(toxic.attributes["delay"] / 1000)
                    return
                if toxic := self.active(link, stream, "limit_data"):
                    allowed = toxic.attributes["bytes"] - link.sent[stream]
                    if len(chunk) >= allowed:
                        writer.write(chunk[:max(allowed, 0)])
                        await writer.drain()
                        log_event("faultproxy", "limit_data_close", proxy=self.name, bytes=toxic.attributes["bytes"])
                        link.close()
                        return
                await self._deliver(link, writer, stream, chunk)
                link.sent[stream] += len(chunk)
        except (ConnectionError, OSError):
            return

    async def _deliver(self, link: Link, writer: asyncio.StreamWriter, stream: str, chunk: bytes) -> None:
        if toxic := self.active(link, stream, "latency"):
            a = toxic.attributes
            await asyncio.sleep(max(0, a["latency"] + random.uniform(-a["jitter"], a["jitter"])) / 1000)
        pieces = [chunk]
        if toxic := self.active(link, stream, "slicer"):
            pieces = _slices(chunk, toxic.attributes["average_size"], toxic.attributes["size_variation"])
        for i, piece in enumerate(pieces):
            if toxic := self.active(link, stream, "bandwidth"):
                await asyncio.sleep(len(piece) / (toxic.attributes["rate"] * 1000) if toxic.attributes["rate"] else 0)
            writer.write(piece)
            await writer.drain()
            if len(pieces) > 1 and (slicer := self.active(link, stream, "slicer")) and i < len(pieces) - 1:
                await asyncio.sleep(slicer.attributes["delay"] / 1e6)


def _slices(data: bytes, average: int, variation: int) -> list[bytes]:
    if average <= 0:
        return [data]
    out, i = [], 0
    while i < len(data):
        size = max(1, average + random.randint(-variation, variation))
        out.append(data[i:i + size])
        i += size
    return out


class FaultProxyServer:
    def __init__(self) -> None:
        self.proxies: dict[str, Proxy] = {}

    async def create(self, body: dict[str, Any]) -> Proxy:
        for key in ("name", "upstream"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise ApiError(400, f"missing required field: {key}")
        if body["name"] in self.proxies:
            raise ApiError(409, "proxy already exists")
        proxy = Proxy(body["name"], body.get("listen") or "127.0.0.1:0", body["upstream"],
                      bool(body.get("enabled", True)))
        if proxy.enabled:
            try:
                await proxy.start()
            except OSError as exc:
                raise ApiError(500, f"listen {proxy.listen}: {exc}") from None
        self.proxies[proxy.name] = proxy
        return proxy

    def proxy(self, name: str) -> Proxy:
        if name not in self.proxies:
            raise ApiError(404, "proxy not found")
        return self.proxies[name]

    async def update(self, name: str, body: dict[str, Any]) -> Proxy:
        proxy = self.proxy(name)
        if "upstream" in body:
            proxy.upstream = body["upstream"]
        if "enabled" in body and bool(body["enabled"]) != proxy.enabled:
            proxy.enabled = bool(body["enabled"])
            await (proxy.start() if proxy.enabled else proxy.stop())
        return proxy

    def add_toxic(self, name: str, body: dict[str, Any]) -> Toxic:
        proxy = self.proxy(name)
        kind = body.get("type")
        if kind not in TOXIC_DEFAULTS:
            raise ApiError(400, f"invalid toxic type: {kind}")
        stream = body.get("stream", "downstream")
        if stream not in ("upstream", "downstream"):
            raise ApiError(400, f"stream must be upstream or downstream, not {stream}")
        toxic_name = body.get("name") or f"{kind}_{stream}"
        if toxic_name in proxy.toxics:
            raise ApiError(409, "toxic already exists")
        attrs = {**TOXIC_DEFAULTS[kind], **{k: int(v) for k, v in (body.get("attributes") or {}).items()}}
        toxic = Toxic(toxic_name, kind, stream, float(body.get("toxicity", 1.0)), attrs)
        proxy.toxics[toxic_name] = toxic
        proxy.notify()
        log_event("faultproxy", "toxic_added", proxy=name, toxic=toxic.as_json())
        return toxic

    def remove_toxic(self, name: str, toxic_name: str) -> None:
        proxy = self.proxy(name)
        if proxy.toxics.pop(toxic_name, None) is None:
            raise ApiError(404, "toxic not found")
        proxy.notify()

    async def reset(self) -> None:
        for proxy in self.proxies.values():
            proxy.toxics.clear()
            proxy.notify()
            if not proxy.enabled:
                proxy.enabled = True
                await proxy.start()

    async def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("?")[0].split("/") if p]
        match (method, parts):
            case ("GET", ["version"]):
                return 200, VERSION
            case ("POST", ["reset"]):
                await self.reset()
                return 204, None
            case ("GET", ["proxies"]):
                return 200, {name: p.as_json() for name, p in self.proxies.items()}
            case ("POST", ["proxies"]):
                return 201, (await self.create(body or {})).as_json()
            case ("POST", ["populate"]):
                made = []
                for item in body or []:
                    if item.get("name") in self.proxies:
                        await self.proxies.pop(item["name"]).stop()
                    made.append((await self.create(item)).as_json())
                return 201, {"proxies": made}
            case ("GET", ["proxies", name]):
                return 200, self.proxy(name).as_json()
            case ("POST" | "PATCH", ["proxies", name]):
                return 200, (await self.update(name, body or {})).as_json()
            case ("DELETE", ["proxies", name]):
                await self.proxy(name).stop()
                del self.proxies[name]
                return 204, None
            case ("GET", ["proxies", name, "toxics"]):
                return 200, [t.as_json() for t in self.proxy(name).toxics.values()]
            case ("POST", ["proxies", name, "toxics"]):
                return 200, self.add_toxic(name, body or {}).as_json()
            case ("GET", ["proxies", name, "toxics", toxic]):
                found = self.proxy(name).toxics.get(toxic)
                if not found:
                    raise ApiError(404, "toxic not found")
                return 200, found.as_json()
            case ("POST" | "PATCH", ["proxies", name, "toxics", toxic]):
                found = self.proxy(name).toxics.get(toxic)
                if not found:
                    raise ApiError(404, "toxic not found")
                found.attributes.update({k: int(v) for k, v in (body or {}).get("attributes", {}).items()})
                if "toxicity" in (body or {}):
                    found.toxicity = float(body["toxicity"])
                self.proxy(name).notify()
                return 200, found.as_json()
            case ("DELETE", ["proxies", name, "toxics", toxic]):
                self.remove_toxic(name, toxic)
                return 204, None
        raise ApiError(404, f"no route for {method} {path}")

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One HTTP/1.1 request per iteration, keep-alive, JSON in and out."""
        buffered = b""
        try:
            while True:
                head, buffered = await read_head(reader, buffered)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                length = int(headers.get("content-length", "0"))
                while len(buffered) < length:
                    chunk = await reader.read(65536)
                    if not chunk:
                        return
                    buffered += chunk
                raw, buffered = buffered[:length], buffered[length:]
                try:
                    body = json.loads(raw) if raw else None
                    status, payload = await self.route(method, path, body)
                except ApiError as err:
                    status, payload = err.status, {"error": err.message, "status": err.status}
                except (ValueError, KeyError, TypeError) as err:
                    status, payload = 400, {"error": f"bad request: {err}", "status": 400}
                data = b"" if payload is None else (payload.encode() if isinstance(payload, str)
                                                    else json.dumps(payload).encode())
                reason = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 404: "Not Found",
                          409: "Conflict", 500: "Internal Server Error"}[status]
                ctype = "text/plain" if isinstance(payload, str) else "application/json"
                writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                             f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
        except (EOFError, ConnectionError, OSError, ValueError):
            pass
        finally:
            writer.close()


async def main() -> None:
    server = FaultProxyServer()
    api = await asyncio.start_server(server.handle, "0.0.0.0", 8474)
    log_event("faultproxy", "listening", port=8474, version=VERSION)
    async with api:
        await api.serve_forever()
