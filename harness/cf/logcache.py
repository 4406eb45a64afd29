"""Log Cache stand-in: what ``cf logs`` (cf CLI >= 6.50) reads, at ``log-cache.<system domain>``.

Fed by the same Doppler as the Traffic Controller (a firehose subscription with no shard id, so it
gets every envelope the emitter sends), it stores loggregator v2 envelopes per source id and serves
Log Cache's read API behind the routers: ``GET /api/v1/read/<source-id>`` and ``/api/v1/info``.
Auth is the real cf-auth-proxy's (log-cache-release ``src/internal/auth/cf_auth_middleware.go``):
no token, a token UAA does not accept, or a source the token cannot read all answer **404** with an
empty body; ``doppler.firehose`` or ``logs.admin`` reads everything; other tokens read the apps
Cloud Controller's ``GET /v3/apps`` lists for them (``capi_client.go``).

Known difference: the real proxy verifies the JWT itself with UAA's token keys; this one asks the
UAA stand-in's ``/check_token`` (the harness's tokens are opaque; see README, Known gaps).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from harness.cf.httpcall import call
from harness.cf.settings import DOPPLER_INGRESS, log_event
from harness.protocol import auth
from harness.protocol import loggregator_v2 as v2

ATTEMPT_HEADER = "X-Harness-Attempt"
READ_PREFIX = "/api/v1/read/"


def token_scopes(uaa_url: str, authorization: str) -> list[str] | None:
    """UAA's view of a token (its scopes), None when UAA refuses it."""
    token = auth.trim_bearer_any_case(authorization)
    status, _, body = call(f"{uaa_url}/check_token", method="POST", data=f"token={quote(token)}".encode(),
                           basic_auth=("doppler", "secret"),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    return list(json.loads(body).get("scope", [])) if status == 200 else None


def follow_doppler(url: str, on_envelope: Callable[[bytes], None], component: str,
                   connected: threading.Event) -> None:
    """Read a Doppler subscription for ever, re-dialling when it drops (Doppler restarts);
    ``connected`` is set once subscribed."""
    while True:
        try:
            # no permessage-deflate: harness.cf.doppler DOPPLER_HOP
            with connect(url, max_size=None, ping_interval=None, open_timeout=5, compression=None) as ws:
                connected.set()
                log_event(component, "subscribed", url=url)
                for message in ws:
                    if isinstance(message, bytes):
                        on_envelope(message)
        except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
            log_event(component, "doppler_lost", url=url, error=repr(exc))
        time.sleep(0.5)


class LogCache:
    def __init__(self, cc_url: str, uaa_url: str) -> None:
        self.cc_url, self.uaa_url = cc_url, uaa_url
        self.store = v2.EnvelopeStore()
        self.lock = threading.Lock()
        self.ingested = 0
        self.subscribed = threading.Event()

    def ingest(self, data: bytes) -> None:
        env = v2.from_dropsonde(data)
        if env is not None:
            with self.lock:
                self.store.add(env)
                self.ingested += 1

    def allowed(self, authorization: str | None, source_id: str) -> bool:
        if not authorization:
            return False
        scopes = token_scopes(self.uaa_url, authorization)
        readable = None
        if scopes is not None and not auth.is_logs_admin(scopes):
            status, _, body = call(f"{self.cc_url}/v3/apps", headers={"Authorization": authorization})
            readable = [r["guid"] for r in json.loads(body).get("resources", [])] if status == 200 else []
        return auth.logs_reader_allows(authorization, scopes, readable, [source_id], guid_only=False)

    def read(self, source_id: str, query: str) -> tuple[int, dict[str, object]]:
        try:
            parsed = v2.ReadQuery.parse(query)
        except v2.QueryError as exc:
            return 400, {"error": str(exc)}
        with self.lock:
            found = self.store.read(source_id, parsed, time.time_ns())
        return 200, v2.read_response(found)


class Handler(BaseHTTPRequestHandler):
    server_version = "log-cache-standin"
    protocol_version = "HTTP/1.1"
    cache: LogCache

    def _send(self, status: int, body: object | None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        attempt = self.headers.get(ATTEMPT_HEADER)
        if url.path == "/health":
            return self._send(200, {"ingested": self.cache.ingested, "subscribed": self.cache.subscribed.is_set()})
        if url.path == "/api/v1/info":
            return self._send(200, {"version": "3.0.0", "vm_uptime": "0"})
        if not url.path.startswith(READ_PREFIX):
            return self._send(404, None)
        source_id = unquote(url.path.removeprefix(READ_PREFIX))
        if not self.cache.allowed(self.headers.get("Authorization"), source_id):
            log_event("log-cache", "denied", attempt=attempt, source_id=source_id)
            return self._send(404, None)
        status, body = self.cache.read(source_id, url.query)
        log_event("log-cache", "read", attempt=attempt, source_id=source_id, query=url.query, status=status,
                  envelopes=len(v2.batch_of(body)) if status == 200 else 0)
        return self._send(status, body)

    def log_message(self, fmt: str, *args: object) -> None:
        pass


def main() -> None:
    cache = LogCache(os.environ.get("LOG_CACHE_CC_URL", "http://cc:9022"),
                     os.environ.get("LOG_CACHE_UAA_URL", "http://cc:9022"))
    doppler = os.environ.get("LOG_CACHE_DOPPLER_URL", DOPPLER_INGRESS)

    # A firehose subscription with no shard id: Doppler fans every envelope out to it. Listening is
    # announced once subscribed, so nothing the emitter sends after start-up is missed.
    threading.Thread(target=follow_doppler, args=(f"{doppler}/subscribe?shard=", cache.ingest, "log-cache",
                                                  cache.subscribed), daemon=True).start()
    cache.subscribed.wait()
    Handler.cache = cache
    port = int(os.environ.get("LOG_CACHE_PORT", "8083"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    log_event("log-cache", "listening", port=port, doppler=doppler)
    server.serve_forever()
