"""Traffic Controller stand-in: the V1 WebSocket API as loggregator-release serves it.

Routes: ``/apps/{guid}/stream``, ``/firehose/{sub_id}`` (WebSocket) and ``/apps/{guid}/recentlogs``
(multipart, historical). Auth runs before the handshake checks, as TC's middleware does. Each
envelope is one binary message; keepalive pings close with 1008 when no pong comes back in time; a
consumer that cannot take an envelope within the slow-consumer timeout is cut with 1000. Doppler
is subscribed before the upgrade checks (503 when that fails), and the 1000-envelope buffer blocks.
Listens with TLS when given a certificate (as real TC, which is TLS-only behind gorouter).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers as WsHeaders
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from harness.cf import frames
from harness.cf.httpcall import call
from harness.cf.sending import send_frames
from harness.cf.settings import DOPPLER_INGRESS, env_float, log_event, server_tls_context
from harness.protocol import auth, handshake, multipart

STREAM = re.compile(r"^/apps/([^/]+)/stream$")
RECENT = re.compile(r"^/apps/([^/]+)/recentlogs$")
FIREHOSE = re.compile(r"^/firehose/([^/]+)$")
KEEPALIVE_CLOSE_REASON = "Client did not respond to ping before keep-alive timeout expired."
ATTEMPT_HEADER = "X-Harness-Attempt"
#: The harness reads this attempt's events here (straight from inside the TC container, never
#: through the LB): ``GET /harness/events?attempt=<id>``.
EVENTS_PATH = "/harness/events"
#: The foundation generation this TC emulates (``harness.profiles``): ``GET /harness/profile?set=current``
#: switches it; read from inside the TC container only, like the events.
PROFILE_PATH = "/harness/profile"


def closed_by(ws: ServerConnection) -> str:
    """Who ended a WebSocket, from its close frames: ``client`` (its close frame came first), ``tc``
    (TC sent the first close frame) or ``lost`` (TCP ended with no close frame: an LB cut or reset)."""
    state = ws.protocol  # websockets' sans-I/O protocol keeps the close frames
    if state.close_rcvd is not None and (state.close_sent is None or state.close_rcvd_then_sent):
        return "client"
    if state.close_sent is not None:
        return "tc"
    return "lost"


@dataclass(frozen=True)
class Timings:
    keepalive_interval: float = 15.0  # sleep after a pong before the next ping (real: 15 s)
    keepalive_timeout: float = 30.0  # how long to wait for a pong (real: 30 s)
    slow_consumer: float = 5.0  # how long one envelope may wait for the writer (real: 5 s)

    @classmethod
    def from_env(cls) -> "Timings":
        return cls(**{field: env_float(env, getattr(cls, field)) for env, field in TIMING_ENV.items()})


#: The environment variables that shrink the TC's timings for a test, and the field each sets.
TIMING_ENV = {"TC_KEEPALIVE_INTERVAL": "keepalive_interval", "TC_KEEPALIVE_TIMEOUT": "keepalive_timeout",
              "TC_SLOW_CONSUMER_TIMEOUT": "slow_consumer"}
#: ``GET /harness/timings?keepalive_interval=1&keepalive_timeout=4`` sets them on the running TC
#: (the rest back to the real defaults) for streams that start afterwards: cells that differ only in
#: them keep one TC (``harness.deployment``). Like ``PROFILE_PATH``, the harness's, not the TC API's.
TIMINGS_PATH = "/harness/timings"
#: The harness's own endpoints: answered on the side port only (the API port answers 404, as the
#: real TC would), so no client through an LB reaches them. Frame scripts stay on the API port.
HARNESS_PATHS = (EVENTS_PATH, PROFILE_PATH, TIMINGS_PATH)


def timings_from_query(query: str) -> "Timings | str":
    """The timings a ``TIMINGS_PATH`` query asks for (fields it leaves out: the real defaults), or
    why it cannot be done (sans-I/O)."""
    fields = parse_qs(query, keep_blank_values=True)
    known = set(TIMING_ENV.values())
    if unknown := sorted(set(fields) - known):
        return f"unknown timing(s) {', '.join(unknown)}: use {', '.join(sorted(known))}"
    values = {}
    for name, raw in fields.items():
        try:
            values[name] = float(raw[-1])
        except ValueError:
            return f"{name}={raw[-1]!r} is not a number of seconds"
        if not values[name] > 0:
            return f"{name} must be more than 0 s, not {raw[-1]}"
    return Timings(**values)


def _respond(status: int, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()) -> Response:
    hdrs = WsHeaders(headers)
    if body and "Content-Type" not in hdrs:
        hdrs["Content-Type"] = "text/plain; charset=utf-8"
    hdrs["Content-Length"] = str(len(body))
    return Response(status, handshake.STATUS_TEXT.get(status, "Error"), hdrs, body)


def token_of(request: Request) -> str | None:
    """``Authorization`` header, else the URL-unescaped ``authorization`` cookie."""
    if value := request.headers.get("Authorization"):
        return value
    cookie = SimpleCookie(request.headers.get("Cookie", ""))
    return unquote(cookie["authorization"].value) if "authorization" in cookie else None


class TrafficController:
    def __init__(self, cc_url: str, uaa_url: str, doppler_urls: list[str], timings: Timings) -> None:
        self.cc_url, self.uaa_url, self.doppler_urls, self.timings = cc_url, uaa_url, doppler_urls, timings
        self.upstreams: dict[int, list[ClientConnection]] = {}
        self.events: collections.deque[dict[str, object]] = collections.deque(maxlen=20000)
        self.profile = os.environ.get("TC_PROFILE", "classic")
        #: the plain side port the harness's own endpoints answer on (None: any port, as in unit tests)
        self.side_port: int | None = None

    def _profile(self, query: str) -> Response:
        wanted = parse_qs(query).get("set", [self.profile])[-1]
        if wanted not in ("classic", "current"):
            return _respond(400, f"unknown profile {wanted!r}: classic or current\n".encode())
        self.profile = wanted
        log_event("tc", "profile", profile=wanted)
        return _respond(200, json.dumps({"profile": wanted}).encode(), (("Content-Type", "application/json"),))

    def _timings(self, query: str) -> Response:
        wanted = timings_from_query(query)
        if isinstance(wanted, str):
            return _respond(400, f"{wanted}\n".encode())
        self.timings = wanted
        log_event("tc", "timings", timings=wanted.__dict__)
        return _respond(200, json.dumps(wanted.__dict__).encode(), (("Content-Type", "application/json"),))

    def event(self, name: str, attempt: str | None, **fields: object) -> None:
        """Log an event and keep it for the harness's witness, keyed by the attempt id."""
        record = {"ts": time.time(), "event": name, "attempt": attempt, **fields}
        self.events.append(record)
        log_event("tc", name, **{k: v for k, v in record.items() if k not in ("ts", "event")})

    def _events_response(self, query: str) -> Response:
        wanted = parse_qs(query).get("attempt")
        body = json.dumps([e for e in list(self.events) if not wanted or e.get("attempt") in wanted]).encode()
        return _respond(200, body, (("Content-Type", "application/json"),))

    async def _app_denial(self, app_id: str, token: str | None) -> auth.Denial | None:
        if denial := auth.app_stream_precheck(app_id, token):
            return denial
        status, _, _ = await asyncio.to_thread(
            call, f"{self.cc_url}/internal/v4/log_access/{quote(app_id)}", headers={"Authorization": token or ""})
        return auth.from_log_access_status(status)

    async def _firehose_denial(self, token: str | None) -> auth.Denial | None:
        scopes = None
        if token:
            status, _, body = await asyncio.to_thread(
                call, f"{self.uaa_url}/check_token", method="POST",
                data=f"token={quote(auth.strip_bearer(token))}".encode(), basic_auth=("doppler", "secret"),
                headers={"Content-Type": "application/x-www-form-urlencoded"})
            scopes = json.loads(body).get("scope", []) if status == 200 else None
        return auth.firehose_denial(token, scopes)

    async def process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        token = token_of(request)
        attempt = request.headers.get(ATTEMPT_HEADER)
        if path == "/health":
            return _respond(200, b"ok\n")
        if path in HARNESS_PATHS and self.side_port is not None and ws.local_address[1] != self.side_port:
            return _respond(404, b"404 page not found\n")  # the real TC has no such route on its API port
        if path == EVENTS_PATH:
            return self._events_response(urlsplit(request.path).query)
        if path == PROFILE_PATH:
            return self._profile(urlsplit(request.path).query)
        if path == TIMINGS_PATH:
            return self._timings(urlsplit(request.path).query)
        if m := RECENT.match(path):
            if self.profile == "current":  # gone since loggregator-release v107 (commit ee2b5225e)
                self.event("recent_logs_removed", attempt, path=path, profile=self.profile)
                return _respond(404, b"404 page not found\n")  # gorilla/mux's NotFound
            return await self._recent(m.group(1), token)
        if m := STREAM.match(path):
            denial, subscribe = await self._app_denial(m.group(1), token), f"app={quote(m.group(1))}"
        elif m := FIREHOSE.match(path):
            denial, subscribe = await self._firehose_denial(token), f"shard={quote(m.group(1))}"
        elif frames.scenario_of(request.path):  # frame-fidelity scripts (harness.cf.frames): no auth, no Doppler
            denial, subscribe = None, ""
        else:
            return _respond(404, b"404 page not found\n")
        if denial:
            self.event("denied", attempt, path=path, status=denial.status)
            return _respond(denial.status, denial.body, denial.headers)
        # Real TC subscribes to Doppler before gorilla's upgrade checks run, and answers 503 when that
        # fails: with Doppler unreachable even a request whose Upgrade was stripped gets 503
        # (cloudfoundry/loggregator-release src/trafficcontroller/internal/proxy/stream_handler.go,
        # firehose_handler.go).
        try:
            upstreams = await self._subscribe(subscribe) if subscribe else []  # frame scripts need no Doppler
        except (OSError, websockets.exceptions.WebSocketException, TimeoutError) as exc:
            self.event("subscribe_failed", attempt, path=path, error=repr(exc))
            return _respond(503, b"")
        headers = list(request.headers.raw_items())
        if rejection := handshake.check_upgrade("GET", headers):
            self.event("handshake_rejected", attempt, path=path, status=rejection.status, reason=rejection.reason,
                       headers=headers)
            for up in upstreams:
                await up.close()
            return _respond(rejection.status, rejection.body, rejection.headers)
        self.upstreams[id(ws)] = upstreams
        return None

    async def _subscribe(self, query: str) -> list[ClientConnection]:
        """One subscription per Doppler; those already opened are closed if a later one fails."""
        opened: list[ClientConnection] = []
        try:
            for url in self.doppler_urls:
                opened.append(await connect(f"{url}/subscribe?{query}", max_size=None, ping_interval=None,
                                            open_timeout=5, compression=None))  # harness.cf.doppler DOPPLER_HOP
        except BaseException:
            for up in opened:
                await up.close()
            raise
        return opened

    async def _recent(self, app_id: str, token: str | None) -> Response:
        if denial := await self._app_denial(app_id, token):
            return _respond(denial.status, denial.body, denial.headers)
        parts: list[bytes] = []
        for url in self.doppler_urls:
            http_url = url.replace("ws://", "http://", 1)
            status, headers, body = await asyncio.to_thread(call, f"{http_url}/recent/{quote(app_id)}")
            if status == 200:
                parts += multipart.decode(headers.get("Content-Type", ""), body)
        ctype, body = multipart.encode(parts)
        return _respond(200, body, (("Content-Type", ctype),))

    async def handle(self, ws: ServerConnection) -> None:
        if ws.request and frames.scenario_of(ws.request.path):
            return await frames.serve(ws, ws.request.headers.get(ATTEMPT_HEADER), self.event)
        upstreams = self.upstreams.pop(id(ws), [])
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)
        peer = ws.remote_address[0]
        xff = ws.request.headers.get("X-Forwarded-For", "") if ws.request else ""
        attempt = ws.request.headers.get(ATTEMPT_HEADER) if ws.request else None
        path = ws.request.path if ws.request else ""
        self.event("stream_open", attempt, path=path, peer=peer, xff=xff,
                   doppler_peers=[up.remote_address[0] for up in upstreams])
        tasks = [asyncio.create_task(self._pump(up, queue)) for up in upstreams]
        tasks += [asyncio.create_task(self._keepalive(ws, attempt)), asyncio.create_task(self._drain_client(ws))]
        try:
            await self._write(ws, queue, peer, xff, attempt)
        finally:
            self.event("stream_closed", attempt, path=path, peer=peer, xff=xff, close_code=ws.close_code,
                       closed_by=closed_by(ws))
            for task in tasks:
                task.cancel()
            for up in upstreams:
                await up.close()

    async def _pump(self, upstream: ClientConnection, queue: asyncio.Queue[bytes]) -> None:
        """Doppler -> per-connection buffer of 1000 that blocks when full: TC sheds nothing, it stops
        reading, and the back-pressure reaches Doppler, whose per-subscription buffer drops the
        oldest (cloudfoundry/loggregator-release src/plumbing/grpc_connector.go: a buffered channel
        of 1000, written with a blocking send)."""
        async for message in upstream:
            await queue.put(message)  # type: ignore[arg-type]

    async def _write(self, ws: ServerConnection, queue: asyncio.Queue[bytes], peer: str, xff: str,
                     attempt: str | None) -> None:
        """Send envelopes until the connection closes. The writer runs as its own task, cancelled
        once when the connection closes: no task per envelope on the hot path."""
        writer = asyncio.create_task(self._send_all(ws, queue, peer, xff, attempt))
        closed = asyncio.create_task(ws.wait_closed())
        try:
            await asyncio.wait({writer, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            writer.cancel()
            closed.cancel()

    async def _send_all(self, ws: ServerConnection, queue: asyncio.Queue[bytes], peer: str, xff: str,
                        attempt: str | None) -> None:
        try:
            while True:
                batch = [await queue.get()]
                while not queue.empty() and len(batch) < 256:
                    batch.append(queue.get_nowait())
                async with asyncio.timeout(self.timings.slow_consumer):
                    await send_frames(ws, batch)
        except TimeoutError:
            self.event("slow_consumer", attempt, message=f"Doppler Proxy: Slow Consumer from {peer}", xff=xff,
                       path=ws.request.path if ws.request else "")
            await ws.close(1000, "")
        except ConnectionClosed:
            return

    async def _keepalive(self, ws: ServerConnection, attempt: str | None) -> None:
        try:
            while True:
                pong = await ws.ping()
                try:
                    await asyncio.wait_for(pong, self.timings.keepalive_timeout)
                except TimeoutError:
                    self.event("keepalive_timeout", attempt, peer=ws.remote_address[0])
                    await ws.close(1008, KEEPALIVE_CLOSE_REASON)
                    return
                await asyncio.sleep(self.timings.keepalive_interval)
        except ConnectionClosed:
            return

    async def _drain_client(self, ws: ServerConnection) -> None:
        """TC reads only to notice disconnects; client data frames are ignored."""
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass


def serve_options(tc: TrafficController) -> dict[str, Any]:
    """The TC's WebSocket server settings. No permessage-deflate: the real TC upgrades with gorilla's
    ``websocket.Upgrader{CheckOrigin: ...}`` and nothing else (cloudfoundry/loggregator-release
    ``src/trafficcontroller/internal/proxy/websocket_handler.go``), so ``EnableCompression`` is
    false and an offer of the extension is declined; ``websockets`` would accept it by default."""
    return {"process_request": tc.process_request, "ping_interval": None, "max_size": None, "server_header": None,
            "compression": None}


async def main() -> None:
    import os

    tc = TrafficController(
        cc_url=os.environ.get("TC_CC_URL", "http://cc:9022"),
        uaa_url=os.environ.get("TC_UAA_URL", "http://cc:9022"),
        doppler_urls=os.environ.get("TC_DOPPLER_URLS", DOPPLER_INGRESS).split(","),
        timings=Timings.from_env(),
    )
    port, harness_port = int(env_float("TC_PORT", 8081)), int(env_float("TC_HARNESS_PORT", 8088))
    # Real TC listens with TLS only (``ServeTLS`` on 8081; loggregator-release
    # src/trafficcontroller/app/traffic_controller.go); gorouter reaches it over TLS and checks the
    # SAN cf-deployment registers (``server_cert_domain_san: doppler.<system domain>``). With
    # TC_TLS_PEM set this listener is TLS; the harness's own reads (events, direct benchmarks) use a
    # plain side port that no router is routed to.
    pem = os.environ.get("TC_TLS_PEM")
    context = server_tls_context(pem, "/tmp/tc.pem") if pem else None
    tc.side_port = harness_port
    options = serve_options(tc)
    async with serve(tc.handle, "0.0.0.0", port, ssl=context, **options), \
            serve(tc.handle, "0.0.0.0", harness_port, **options):
        log_event("tc", "listening", port=port, tls=context is not None, harness_port=harness_port,
                  timings=tc.timings.__dict__)
        await asyncio.Future()
