"""Cloud Controller + UAA stand-in: ``/v2/info``, ``/``, log access checks and ``/check_token``.

The advertised ``doppler_logging_endpoint`` is the topology's ``logger_endpoint`` (scheme, host,
port): the port clients dial, which the seed says must match the LB's WebSocket port.
"""

from __future__ import annotations

import base64
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from harness.cf.settings import env_json, log_event
from harness.protocol.auth import TokenTable


class CloudController(BaseHTTPRequestHandler):
    server_version = "cc-standin"
    tokens: TokenTable
    info: dict[str, object]
    root: dict[str, object]

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?")[0]
        if path == "/v2/info":
            return self._send(200, self.info)
        if path == "/":
            return self._send(200, self.root)
        if path == "/health":
            return self._send(200, {"ok": True})
        if path.startswith("/internal/v4/log_access/"):
            app_id = path.rsplit("/", 1)[1]
            status = self.tokens.log_access(self.headers.get("Authorization"), app_id)
            return self._send(status, {} if status == 200 else {"error": status})
        return self._send(404, {"code": 10000, "description": "Unknown request", "error_code": "CF-NotFound"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?")[0] != "/check_token":
            return self._send(404, {})
        if not self._uaa_client_ok():
            return self._send(401, {"error": "unauthorized"})
        length = int(self.headers.get("Content-Length", 0))
        token = parse_qs(self.rfile.read(length).decode()).get("token", [""])[0]
        scopes = self.tokens.check_token(token)
        if scopes is None:
            return self._send(400, {"error": "invalid_token", "error_description": "Invalid token"})
        return self._send(200, {"scope": scopes, "client_id": "cf"})

    def _uaa_client_ok(self) -> bool:
        expected = "Basic " + base64.b64encode(b"doppler:secret").decode()
        return self.headers.get("Authorization") == expected

    def log_message(self, fmt: str, *args: object) -> None:
        log_event("cc", "request", line=fmt % args)


def main() -> None:
    system_domain = os.environ.get("CF_SYSTEM_DOMAIN", "sys.example.com")
    scheme = os.environ.get("CF_LOGGER_SCHEME", "wss")
    port = os.environ.get("CF_LOGGER_PORT", "443")
    api_scheme = os.environ.get("CF_API_SCHEME", "https")
    doppler = f"{scheme}://doppler.{system_domain}:{port}"
    api = f"{api_scheme}://api.{system_domain}"
    CloudController.tokens = TokenTable.from_dict(env_json("CF_TOKENS", {}))  # type: ignore[arg-type]
    CloudController.info = {
        "name": "harness", "build": "", "api_version": "2.164.0",
        "authorization_endpoint": f"{api_scheme}://login.{system_domain}",
        "token_endpoint": f"{api_scheme}://uaa.{system_domain}",
        "doppler_logging_endpoint": doppler,
        "routing_endpoint": f"{api}/routing",
    }
    CloudController.root = {"links": {
        "self": {"href": api},
        "cloud_controller_v2": {"href": f"{api}/v2", "meta": {"version": "2.164.0"}},
        "cloud_controller_v3": {"href": f"{api}/v3", "meta": {"version": "3.99.0"}},
        "logging": {"href": doppler},
        "log_stream": {"href": f"{api_scheme}://log-stream.{system_domain}"},
        "uaa": {"href": f"{api_scheme}://uaa.{system_domain}"},
    }}
    port_num = int(os.environ.get("CC_PORT", "9022"))
    log_event("cc", "listening", port=port_num, doppler_logging_endpoint=doppler)
    ThreadingHTTPServer(("0.0.0.0", port_num), CloudController).serve_forever()
