"""RLP gateway stand-in: what v2 nozzles read, ``GET /v2/read`` as server-sent events at
``log-stream.<system domain>``.

Per request it subscribes to the same Doppler as the Traffic Controller (an app stream for each
``source_id``, or the firehose under ``shard_id`` for an admin without one) and writes each batch as
``data: {"batch": [...]}`` (protojson, lowerCamelCase), a heartbeat event when idle, and
``event: closing`` at the stream timeout (loggregator-release ``src/rlp-gateway/internal/web/read.go``).
Refusals are the real middleware's: 404 ``{"error": "not_found", ...}`` for a missing or unreadable
token, a non-admin without ``source_id``, a source id that is not a GUID or not readable (Cloud
Controller's ``/internal/v4/log_access/<id>``, ``internal/auth/capi_client.go``); 400 for a query
without an envelope type; 405 for a method other than GET.
"""

from __future__ import annotations

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from harness.cf.httpcall import call
from harness.cf.logcache import ATTEMPT_HEADER, token_scopes
from harness.cf.settings import DOPPLER_INGRESS, env_float, log_event
from harness.protocol import auth
from harness.protocol import loggregator_v2 as v2

NOT_FOUND = {"message": "resource not found", "error": "not_found"}
#: What this gateway wrote per attempt (``GET /harness/sent?attempt=<id>``, read from inside the
#: container): the witness of what left the gateway, to compare with what the nozzle got.
SENT: dict[str, dict[str, object]] = {}
BATCH_MAX = 100  # envelopes per SSE event at most


class Handler(BaseHTTPRequestHandler):
    server_version = "rlp-gateway-standin"
    protocol_version = "HTTP/1.1"
    cc_url = "http://cc:9022"
    uaa_url = "http://cc:9022"
    doppler = "ws://doppler:8082"
    heartbeat = 5.0
    stream_timeout = 14 * 60.0

    def _error(self, status: int, body: dict[str, str]) -> None:
        # Go's http.Error: text/plain, the JSON text plus a newline, nosniff.
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        self._error(405, {"message": "method not allowed", "error": "method_not_allowed"})

    def _allowed(self, authorization: str | None, source_ids: list[str]) -> bool:
        if not authorization:
            return False
        scopes = token_scopes(self.uaa_url, authorization)
        readable = None
        if scopes is not None and not auth.is_logs_admin(scopes):
            readable = [s for s in source_ids if auth.GUID.match(s) and call(
                f"{self.cc_url}/internal/v4/log_access/{quote(s)}", headers={"Authorization": authorization})[0] == 200]
        return auth.logs_reader_allows(authorization, scopes, readable, source_ids, guid_only=True)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        attempt = self.headers.get(ATTEMPT_HEADER)
        if url.path == "/health":
            data = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if url.path == "/harness/sent":
            wanted = parse_qs(url.query).get("attempt", [""])[0]
            data = json.dumps(SENT.get(wanted, {})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if url.path != "/v2/read":
            return self._error(404, {"message": "404 page not found", "error": "not_found"})
        query = parse_qs(url.query, keep_blank_values=True)
        source_ids = query.get("source_id", [])
        if not self._allowed(self.headers.get("Authorization"), source_ids):
            log_event("rlp-gateway", "denied", attempt=attempt, source_ids=source_ids)
            return self._error(404, NOT_FOUND)
        if err := v2.rlp_selector_error(url.query):
            return self._error(400, {"message": str(err), "error": "bad_request"})
        # One Doppler subscription: the first source id's app stream, or the firehose under shard_id.
        subscription = (f"{self.doppler}/subscribe?app={quote(source_ids[0])}" if source_ids else
                        f"{self.doppler}/subscribe?shard={quote(query.get('shard_id', [''])[0])}")
        self._stream(subscription, attempt, logs_wanted="log" in query)

    def _stream(self, subscription: str, attempt: str | None, *, logs_wanted: bool) -> None:
        chunked = self.request_version == "HTTP/1.1"  # Go's server: chunked for 1.1, close-delimited for 1.0
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "keep-alive")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        sent, began = 0, time.monotonic()
        record: dict[str, object] = SENT.setdefault(attempt or "", {"envelopes": 0, "events": 0, "last_seq": None})
        log_event("rlp-gateway", "stream_open", attempt=attempt, subscription=subscription)
        try:
            # no permessage-deflate: harness.cf.doppler DOPPLER_HOP
            with connect(subscription, max_size=None, ping_interval=None, open_timeout=5, compression=None) as ws:
                record["subscribed"] = True  # from here on the emitter's lines reach this stream
                while True:
                    left = self.stream_timeout - (time.monotonic() - began)
                    if left <= 0:
                        self._write(v2.sse_event("closing due to stream timeout", "closing"), chunked)
                        break
                    # The stand-in's envelopes are all logs: a query for other types gets heartbeats only.
                    batch = self._batch(ws, min(self.heartbeat, left)) if logs_wanted else []
                    if not logs_wanted:
                        time.sleep(min(self.heartbeat, left))
                    if batch:
                        sent += len(batch)
                        self._write(v2.sse_event(json.dumps({"batch": batch})), chunked)
                        record["envelopes"] = sent
                        record["events"] = int(record["events"]) + 1  # type: ignore[call-overload]
                        record["last_seq"] = (v2.as_log(batch[-1]) or v2.V2Log(None, 0, b"")).seq
                    else:
                        self._write(v2.sse_event(str(int(time.time())), "heartbeat"), chunked)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
        except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
            log_event("rlp-gateway", "stream_error", attempt=attempt, error=repr(exc))
        log_event("rlp-gateway", "stream_closed", attempt=attempt, envelopes=sent)

    @staticmethod
    def _batch(ws, wait: float) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
        """Envelopes that arrive within ``wait`` s of each other, at most BATCH_MAX ([] when idle)."""
        batch: list[dict[str, object]] = []
        timeout = wait
        while len(batch) < BATCH_MAX:
            try:
                message = ws.recv(timeout=timeout)
            except TimeoutError:
                break
            if isinstance(message, bytes) and (env := v2.from_dropsonde(message, camel=True)) is not None:
                batch.append(env)
            timeout = 0.01
        return batch

    def _write(self, data: bytes, chunked: bool) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
        self.wfile.flush()

    def log_message(self, fmt: str, *args: object) -> None:
        pass


def main() -> None:
    Handler.cc_url = os.environ.get("RLP_CC_URL", "http://cc:9022")
    Handler.uaa_url = os.environ.get("RLP_UAA_URL", "http://cc:9022")
    Handler.doppler = os.environ.get("RLP_DOPPLER_URL", DOPPLER_INGRESS)
    Handler.heartbeat = env_float("RLP_HEARTBEAT", 5)
    Handler.stream_timeout = env_float("RLP_STREAM_TIMEOUT", 14 * 60)
    port = int(os.environ.get("RLP_PORT", "8088"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    log_event("rlp-gateway", "listening", port=port, heartbeat=Handler.heartbeat)
    server.serve_forever()
