"""A TCP fault proxy that behaves like Toxiproxy 2.12 (whose server binary cannot be had here).

Same HTTP API on :8474 as Shopify/toxiproxy ``api.go`` (routes, methods, status codes, error
bodies, ``/version`` as JSON, ``/populate`` keeping identical proxies), same proxy life cycle
(``proxy.go``: an update that changes ``listen`` or ``upstream`` drops connections and restarts
the listener) and the same toxic chains (``link.go``, ``toxic_collection.go``; the toxics are in
``harness.cf.toxics``): toxics run in the order they were added, several of one type allowed,
applied to live connections, each direction draining through its chain before its socket closes.
``tests/unit/cf/test_toxiproxy_conformance.py`` holds it to what Toxiproxy's own tests assert.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from harness.cf.settings import log_event
from harness.cf.streams import read_head
from harness.cf.toxics import NOOP, TOXICS, Chan, Chunk, ResetPeer, Stub, ToxicWrapper

#: Toxiproxy's version with build metadata: a client comparing versions sees 2.12.0.
VERSION = "2.12.0+harness"
DIRECTIONS = ("upstream", "downstream")
READ_SIZE = 32 * 1024  # io.Copy's buffer: one socket read = one chunk


class ApiError(Exception):
    """An API failure with Toxiproxy's status and message (``api.go``: ``ApiError``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def bad_body(detail: str) -> ApiError:
    return ApiError(400, f"bad request body: {detail}")


# -- Go's encoding/json, as far as the API's bodies need it -------------------------------------

_GO_TYPES = {str: "string", bool: "bool", int: "int64", float: "float32"}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {json.dumps(value)}"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "value"


def decode_body(raw: bytes) -> Any:
    """The first JSON value of a body (Go's json.Decoder ignores what follows it)."""
    text = raw.decode("utf-8", "replace").lstrip()
    if not text:
        raise bad_body("EOF")
    try:
        return json.JSONDecoder().raw_decode(text)[0]
    except ValueError as exc:
        raise bad_body(str(exc)) from None


def decode_fields(value: Any, fields: dict[str, type], where: str) -> dict[str, Any]:
    """Fields of a JSON object as Go decodes them into a struct: keys match case-insensitively,
    unknown keys and nulls are ignored, a value of the wrong type is an error."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_body(f"json: cannot unmarshal {_json_kind(value).split()[0]} into Go value of type {where}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = key if key in fields else next((f for f in fields if f.lower() == key.lower()), None)
        if name is None or item is None:
            continue
        want = fields[name]
        ok = {str: isinstance(item, str), bool: isinstance(item, bool),
              int: isinstance(item, int) and not isinstance(item, bool) and -2**63 <= item < 2**63,
              float: isinstance(item, (int, float)) and not isinstance(item, bool)}[want]
        if not ok:
            raise bad_body(f"json: cannot unmarshal {_json_kind(item)} into Go struct field {where}.{key} "
                           f"of type {_GO_TYPES[want]}")
        out[name] = float(item) if want is float else item
    return out


PROXY_FIELDS: dict[str, type] = {"name": str, "listen": str, "upstream": str, "enabled": bool}
TOXIC_FIELDS: dict[str, type] = {"name": str, "type": str, "stream": str, "toxicity": float}


def parse_direction(stream: str) -> str:
    """``stream.ParseDirection``: case-insensitive."""
    if stream.lower() not in DIRECTIONS:
        raise ApiError(400, "stream was invalid, can be either upstream or downstream")
    return stream.lower()


def toxic_attributes(kind: str, value: Any) -> dict[str, int]:
    return decode_fields(value, {a: int for a in TOXICS[kind].attributes}, f"toxics.{TOXICS[kind].__name__}Toxic")


# -- addresses ----------------------------------------------------------------------------------

def format_addr(host: str, port: int) -> str:
    """Go's TCPAddr.String(): IPv6 in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not port.isdigit():
        raise ApiError(500, f"listen tcp {addr}: address {addr}: missing port in address")
    return host.strip("[]"), int(port)


def resolve_listen(addr: str) -> str:
    """``net.ResolveTCPAddr(addr).String()``: what ``Differs`` compares with the bound address."""
    host, port = split_addr(addr)
    if not host:
        return f":{port}"
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ApiError(500, f"lookup {host}: {exc}") from None
    return format_addr(str(info[0][4][0]), port)


def bind_listener(addr: str) -> tuple[socket.socket, str]:
    """Listen like ``net.Listen("tcp", addr)``: a wildcard host (empty, 0.0.0.0, ::) listens
    dual-stack on [::] where the host has IPv6; returns the socket and the address Go would print."""
    host, port = split_addr(addr)
    if host in ("", "0.0.0.0", "::"):
        candidates = [(socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")]  # dual stack where IPv6 exists
    else:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        candidates = [(info[0], str(info[4][0]))]
    for i, (family, bind_host) in enumerate(candidates):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if family == socket.AF_INET6 and bind_host == "::":
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((bind_host, port))
            sock.listen(128)
            break
        except OSError as exc:
            sock.close()
            if i == len(candidates) - 1 or exc.errno == errno.EADDRINUSE:
                raise ApiError(500, f"listen tcp {addr}: bind: {exc.strerror or exc}") from None
    family_host = bind_host
    sock.setblocking(False)
    return sock, format_addr(family_host, sock.getsockname()[1])


# -- links: one direction of one connection -----------------------------------------------------

class ToxicLink:
    """One direction of one connection: reader -> stub per toxic -> writer (``link.go``)."""

    def __init__(self, collection: ToxicCollection, direction: str) -> None:
        chain = collection.chain[direction]
        self.collection, self.direction = collection, direction
        self.input = Chan(0)
        last, self.stubs = self.input, []
        for i in range(len(chain)):
            nxt = Chan(chain[i + 1].buffer_size) if i + 1 < len(chain) else Chan(0)
            self.stubs.append(Stub(last, nxt))
            last = nxt
        self.output = last
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, source: asyncio.StreamReader, dest: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        for stub, toxic in zip(self.stubs, self.collection.chain[self.direction]):
            stub.state = toxic.toxic.new_state()
            stub.run(toxic)
        self.tasks = [loop.create_task(self._read(source)), loop.create_task(self._write(dest))]

    async def _read(self, source: asyncio.StreamReader) -> None:
        try:
            while data := await source.read(READ_SIZE):
                await self.input.put(Chunk(data))
        except (ConnectionError, OSError):
            pass
        finally:
            self.input.close()

    async def _write(self, dest: asyncio.StreamWriter) -> None:
        """Copy the chain's output to ``dest``, then close ``dest`` (all of it: Toxiproxy does not
        half-close); the other direction then reads end of stream and drains in turn."""
        try:
            while (chunk := await self.output.get()) is not None:
                if chunk.data:
                    dest.write(chunk.data)
                    await dest.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dest.close()
            self.collection.links.discard(self)
            for task in (self.tasks[0], *(s.task for s in self.stubs)):
                if task is not None and not task.done():
                    task.cancel()  # nothing reads this direction any more

    async def add_toxic(self, toxic: ToxicWrapper) -> None:
        """Append a stub behind the last one, interrupting it so it can be re-pointed."""
        last = self.stubs[-1]
        stub = Stub(Chan(toxic.buffer_size), last.output)
        self.stubs.append(stub)
        if await last.interrupt():
            last.output = stub.input
            stub.state = toxic.toxic.new_state()
            stub.run(toxic)
            last.run(self.collection.chain[self.direction][len(self.stubs) - 2])
        else:  # the link is closing: the new stub only passes the close on
            stub.output = stub.input
            stub.close()

    async def update_toxic(self, toxic: ToxicWrapper) -> None:
        stub = self.stubs[toxic.index]
        if await stub.interrupt():
            stub.run(toxic)

    async def remove_toxic(self, toxic: ToxicWrapper, index: int) -> None:
        """Take a stub out of the chain without losing the chunks in flight (``RemoveToxic``)."""
        stub, prev = self.stubs[index], self.stubs[index - 1]
        if not await stub.interrupt():
            return
        toxic.toxic.cleanup(stub)
        if stub.closed:
            return
        stopping = asyncio.ensure_future(prev.interrupt())
        while not stopping.done():  # keep the previous stub unblocked while it is interrupted
            getting = asyncio.ensure_future(stub.input.get())
            await asyncio.wait({stopping, getting}, return_when=asyncio.FIRST_COMPLETED)
            if not getting.done():
                getting.cancel()
                continue
            chunk = getting.result()
            if chunk is None:
                stub.close()
                await stopping
                return
            await stub.send(chunk, timeout=5)
        while stub.input.items:
            await stub.send(stub.input.pop(), timeout=5)
        if stub.input.closed:
            stub.close()
            return
        prev.output = stub.output
        del self.stubs[index]
        prev.run(self.collection.chain[self.direction][index - 1])


class ToxicCollection:
    """A proxy's toxics: one chain per direction starting with a hidden noop, and its live links."""

    def __init__(self) -> None:
        self.chain: dict[str, list[ToxicWrapper]] = {d: [NOOP] for d in DIRECTIONS}
        self.links: set[ToxicLink] = set()
        self.lock = asyncio.Lock()

    def toxics(self) -> list[ToxicWrapper]:
        return [t for d in DIRECTIONS for t in self.chain[d][1:]]

    def find(self, name: str) -> ToxicWrapper | None:
        return next((t for t in self.toxics() if t.name == name), None)

    def has_reset_peer(self) -> bool:
        return any(isinstance(t.toxic, ResetPeer) for t in self.toxics())

    async def _each_link(self, direction: str, action: Callable[[ToxicLink], Awaitable[None]]) -> None:
        await asyncio.gather(*(action(link) for link in list(self.links) if link.direction == direction))

    async def add(self, body: Any) -> ToxicWrapper:
        async with self.lock:
            fields = decode_fields(body, TOXIC_FIELDS, "toxics.ToxicWrapper")
            attributes = (body or {}).get("attributes") if isinstance(body, dict) else None
            if attributes is not None and not isinstance(attributes, dict):
                raise bad_body(f"json: cannot unmarshal {_json_kind(attributes).split()[0]} into Go struct field "
                               "ToxicWrapper.attributes of type toxics.Toxic")
            stream = fields.get("stream", "downstream")
            direction = parse_direction(stream)
            kind = fields.get("type", "")
            name = fields.get("name") or f"{kind}_{stream}"
            if kind not in TOXICS:
                raise ApiError(400, "invalid toxic type")
            if self.find(name):
                raise ApiError(409, "toxic already exists")
            toxic = ToxicWrapper(name, kind, stream, direction, fields.get("toxicity", 1.0),
                                 TOXICS[kind](**toxic_attributes(kind, attributes)))
            toxic.index = len(self.chain[direction])
            self.chain[direction].append(toxic)
            await self._each_link(direction, lambda link: link.add_toxic(toxic))
            return toxic

    async def update(self, name: str, body: Any) -> ToxicWrapper:
        async with self.lock:
            toxic = self.find(name)
            if toxic is None:
                raise ApiError(404, "toxic not found")
            fields = decode_fields(body, {"toxicity": float}, "struct { Attributes interface {}; Toxicity float32 }")
            attributes = toxic_attributes(toxic.type, body.get("attributes") if isinstance(body, dict) else None)
            for key, value in attributes.items():
                setattr(toxic.toxic, key, value)
            toxic.toxicity = fields.get("toxicity", toxic.toxicity)
            await self._each_link(toxic.direction, lambda link: link.update_toxic(toxic))
            return toxic

    async def remove(self, name: str) -> None:
        async with self.lock:
            toxic = self.find(name)
            if toxic is None:
                raise ApiError(404, "toxic not found")
            await self._remove(toxic)

    async def _remove(self, toxic: ToxicWrapper) -> None:
        chain, index = self.chain[toxic.direction], toxic.index
        del chain[index]
        for i, other in enumerate(chain):
            other.index = i
        await self._each_link(toxic.direction, lambda link: link.remove_toxic(toxic, index))
        toxic.index = -1

    async def reset(self) -> None:
        async with self.lock:
            for direction in DIRECTIONS:
                while len(self.chain[direction]) > 1:
                    await self._remove(self.chain[direction][1])


@dataclass(eq=False)
class Proxy:
    """A listener and its connections (``proxy.go``)."""

    name: str
    listen: str
    upstream: str
    enabled: bool = False
    toxics: ToxicCollection = field(default_factory=ToxicCollection)
    server: asyncio.Server | None = None
    connections: dict[str, asyncio.StreamWriter] = field(default_factory=dict)
    #: the tasks that drop a connection from ``connections`` once it ends (asyncio keeps tasks weakly)
    forgetting: set[asyncio.Task[None]] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream, "enabled": self.enabled,
                "toxics": [t.as_json() for t in self.toxics.toxics()]}

    def differs(self, listen: str, upstream: str) -> bool:
        return self.listen != resolve_listen(listen) or self.upstream != upstream

    async def start(self) -> None:
        """Listen; raises ApiError 500 with Go's wording when the address cannot be had."""
        sock, self.listen = bind_listener(self.listen)
        self.server = await asyncio.start_server(self._accept, sock=sock)
        self.enabled = True
        log_event("faultproxy", "proxy_started", proxy=self.name, listen=self.listen, upstream=self.upstream)

    async def stop(self) -> None:
        """Stop listening and close every connection (``stop``)."""
        if not self.enabled:
            return
        self.enabled = False
        if self.server:
            self.server.close()
            self.server = None
        for writer in list(self.connections.values()):
            writer.close()
        self.connections.clear()

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        if self.differs(listen, upstream):
            await self.stop()
            self.listen, self.upstream = listen, upstream
        if enabled != self.enabled:
            await (self.start() if enabled else self.stop())

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.enabled:
            writer.close()
            return
        host, port = split_addr(self.upstream)
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        if not self.enabled:  # stopped while dialling
            writer.close()
            up_writer.close()
            return
        name = format_addr(*writer.get_extra_info("peername")[:2])
        self.connections[name + "upstream"], self.connections[name + "downstream"] = up_writer, writer
        if self.toxics.has_reset_peer():  # link.Start: SO_LINGER 0 on both sockets, so a close is a RST
            for w in (writer, up_writer):
                w.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for direction, source, dest in (("upstream", reader, up_writer), ("downstream", up_reader, writer)):
            link = ToxicLink(self.toxics, direction)
            self.toxics.links.add(link)
            link.start(source, dest)
        task = asyncio.get_running_loop().create_task(self._forget(name, writer, up_writer))
        self.forgetting.add(task)
        task.add_done_callback(self.forgetting.discard)

    async def _forget(self, name: str, *writers: asyncio.StreamWriter) -> None:
        for w in writers:
            await w.wait_closed()
        for suffix in DIRECTIONS:
            self.connections.pop(name + suffix, None)


class FaultProxyServer:
    """The proxies and the HTTP API over them (``api.go``, ``proxy_collection.go``)."""

    def __init__(self) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()

    def proxy(self, name: str) -> Proxy:
        if name not in self.proxies:
            raise ApiError(404, "proxy not found")
        return self.proxies[name]

    async def create(self, body: Any) -> Proxy:
        fields = {"enabled": True, **decode_fields(body, PROXY_FIELDS, "toxiproxy.Proxy")}
        for key in ("name", "upstream"):
            if not fields.get(key):
                raise ApiError(400, f"missing required field: {key}")
        async with self.lock:
            if fields["name"] in self.proxies:
                raise ApiError(409, "proxy already exists")
            proxy = Proxy(fields["name"], fields.get("listen", ""), fields["upstream"])
            if fields["enabled"]:
                await proxy.start()
            self.proxies[proxy.name] = proxy
            return proxy

    async def populate(self, body: Any) -> tuple[list[Proxy], ApiError | None]:
        """Validate every entry first; keep a proxy whose listen and upstream are unchanged (with
        its toxics and connections); replace one that changed (``PopulateJson``, ``AddOrReplace``)."""
        if not isinstance(body, list):
            raise bad_body(f"json: cannot unmarshal {_json_kind(body).split()[0]} into Go value of type "
                           "[]struct { toxiproxy.Proxy; Enabled *bool }")
        entries = [decode_fields(item, PROXY_FIELDS, "toxiproxy.Proxy") for item in body]
        for i, entry in enumerate(entries, 1):
            for key in ("name", "upstream"):
                if not entry.get(key):
                    raise ApiError(400, f"missing required field: {key} at proxy {i}")
        made: list[Proxy] = []
        for entry in entries:
            try:
                async with self.lock:
                    existing = self.proxies.get(entry["name"])
                    listen = entry.get("listen", "")
                    if existing and not existing.differs(listen, entry["upstream"]):
                        made.append(existing)
                        continue
                    if existing:
                        await existing.stop()
                    proxy = Proxy(entry["name"], listen, entry["upstream"])
                    if entry.get("enabled", True):
                        await proxy.start()
                    self.proxies[proxy.name] = proxy
                    made.append(proxy)
            except ApiError as err:
                return made, err
        return made, None

    async def update(self, name: str, body: Any) -> Proxy:
        proxy = self.proxy(name)
        fields = {"listen": proxy.listen, "upstream": proxy.upstream, "enabled": proxy.enabled,
                  **decode_fields(body, PROXY_FIELDS, "toxiproxy.Proxy")}
        async with self.lock:
            await proxy.update(fields["listen"], fields["upstream"], fields["enabled"])
        return proxy

    async def delete(self, name: str) -> None:
        async with self.lock:
            await self.proxy(name).stop()
            del self.proxies[name]

    async def reset(self) -> None:
        """Re-enable every proxy and remove every toxic (``ResetState``)."""
        for proxy in list(self.proxies.values()):
            if not proxy.enabled:
                await proxy.start()
            await proxy.toxics.reset()

    async def route(self, method: str, path: str, body: Callable[[], Any]) -> tuple[int, Any]:
        """Dispatch like Toxiproxy's gorilla/mux router: unknown path 404, known path with
        another method 405. ``body`` decodes the request body when a handler needs it."""
        parts = [p for p in path.split("?")[0].split("/")]
        if parts[:1] != [""] or "" in parts[1:]:
            raise NoRoute(404)
        parts = parts[1:]
        match parts:
            case ["version"]:
                allowed = {"GET": lambda: self._ok(200, {"version": VERSION})}
            case ["reset"]:
                allowed = {"POST": lambda: self._call(204, self.reset())}
            case ["proxies"]:
                allowed = {"GET": lambda: self._ok(200, {n: p.as_json() for n, p in self.proxies.items()}),
                           "POST": lambda: self._json(201, self.create(body()))}
            case ["populate"]:
                allowed = {"POST": lambda: self._populate(body)}
            case ["proxies", name]:
                allowed = {"GET": lambda: self._ok(200, self.proxy(name).as_json()),
                           "POST": lambda: self._json(200, self.update(name, body())),
                           "PATCH": lambda: self._json(200, self.update(name, body())),
                           "DELETE": lambda: self._call(204, self.delete(name))}
            case ["proxies", name, "toxics"]:
                allowed = {"GET": lambda: self._ok(200, [t.as_json() for t in self.proxy(name).toxics.toxics()]),
                           "POST": lambda: self._json(200, self.proxy(name).toxics.add(body()))}
            case ["proxies", name, "toxics", toxic]:
                allowed = {"GET": lambda: self._ok(200, self._toxic(name, toxic).as_json()),
                           "POST": lambda: self._json(200, self.proxy(name).toxics.update(toxic, body())),
                           "PATCH": lambda: self._json(200, self.proxy(name).toxics.update(toxic, body())),
                           "DELETE": lambda: self._call(204, self.proxy(name).toxics.remove(toxic))}
            case _:
                raise NoRoute(404)
        if method not in allowed:
            raise NoRoute(405)
        return await allowed[method]()

    def _toxic(self, proxy: str, name: str) -> ToxicWrapper:
        found = self.proxy(proxy).toxics.find(name)
        if found is None:
            raise ApiError(404, "toxic not found")
        return found

    @staticmethod
    async def _ok(status: int, payload: Any) -> tuple[int, Any]:
        return status, payload

    @staticmethod
    async def _call(status: int, action: Awaitable[None]) -> tuple[int, Any]:
        await action
        return status, None

    @staticmethod
    async def _json(status: int, action: Awaitable[Any]) -> tuple[int, Any]:
        return status, (await action).as_json()

    async def _populate(self, body: Callable[[], Any]) -> tuple[int, Any]:
        """Populate answers in its own shape, errors included: the error, its status and the
        proxies made (null when validation failed before any)."""
        try:
            made, err = await self.populate(body())
        except ApiError as invalid:
            return invalid.status, {"error": invalid.message, "status": invalid.status, "proxies": None}
        payload: dict[str, Any] = {"proxies": [p.as_json() for p in made]}
        if err is None:
            return 201, payload
        return err.status, {"error": err.message, "status": err.status, **payload}

    async def respond(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, str, bytes]:
        """One request -> (status, content type, body), as Toxiproxy's handlers write them."""
        if headers.get("user-agent", "").startswith("Mozilla/"):  # stopBrowsersMiddleware
            return 403, "text/plain; charset=utf-8", b"User agent not allowed\n"
        try:
            status, payload = await self.route(method, path, lambda: decode_body(raw))
        except NoRoute as miss:
            return miss.status, "text/plain; charset=utf-8", b"404 page not found\n" if miss.status == 404 else b""
        except ApiError as err:  # http.Error: the JSON error as text, newline-terminated
            return err.status, "text/plain; charset=utf-8", (json.dumps({"error": err.message,
                                                                         "status": err.status}) + "\n").encode()
        if path.startswith("/version"):
            return status, "application/json;charset=utf-8", (json.dumps(payload) + "\n").encode()
        return status, "application/json", b"" if payload is None else json.dumps(payload).encode()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """HTTP/1.1 with keep-alive: one request per iteration."""
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
                status, ctype, data = await self.respond(method, path, headers, raw)
                reason = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 403: "Forbidden",
                          404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
                          500: "Internal Server Error"}.get(status, "Error")
                writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                             f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
        except (EOFError, ConnectionError, OSError, ValueError):
            pass
        finally:
            writer.close()


class NoRoute(Exception):
    """The router found no handler: 404 (no such path) or 405 (path known, method not)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def main() -> None:
    server = FaultProxyServer()
    api = await asyncio.start_server(server.handle, "0.0.0.0", 8474)
    log_event("faultproxy", "listening", port=8474, version=VERSION)
    async with api:
        await api.serve_forever()
