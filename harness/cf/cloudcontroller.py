"""Cloud Controller + UAA stand-in: ``/v2/info``, ``/``, log access checks and ``/check_token``.

The advertised ``doppler_logging_endpoint`` is the topology's ``logger_endpoint`` (scheme, host,
port): the port clients dial, which the seed says must match the LB's WebSocket port.
"""

from __future__ import annotations

import base64
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus

from harness.cf.settings import RUNTIME_PATH, env_json, load_runtime, log_event, set_runtime
from harness.protocol import uaa
from harness.protocol.auth import Grant, TokenTable, readable_apps, trim_bearer_any_case


class CloudController(BaseHTTPRequestHandler):
    server_version = "cc-standin"
    tokens: TokenTable
    uaa: "uaa.Uaa | None" = None  # the UAA stand-in's token endpoint, when given a signing key
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
        if path == RUNTIME_PATH and self.client_address[0] == "127.0.0.1":  # the harness, from inside
            return self._set_runtime()
        if path in ("/v3/apps", "/v3/service_instances"):
            return self._v3_list(path)
        if path == "/token_keys":
            return self._send(200, self.uaa.key.token_keys()) if self.uaa else self._send(404, {})
        if path.startswith("/internal/v4/log_access/"):
            app_id = path.rsplit("/", 1)[1]
            status = self._log_access(self.headers.get("Authorization"), app_id)
            return self._send(status, {} if status == 200 else {"error": status})
        return self._send(404, {"code": 10000, "description": "Unknown request", "error_code": "CF-NotFound"})

    def _set_runtime(self) -> None:
        """Advertise another logger endpoint from now on (``RUNTIME_SETTINGS``)."""
        applied = set_runtime(self.path.partition("?")[2], RUNTIME_SETTINGS)
        if isinstance(applied, str):
            log_event("cc", "runtime_refused", error=applied)
            return self._send(400, {"error": applied})
        doppler = advertise()
        log_event("cc", "runtime", doppler_logging_endpoint=doppler, **applied)
        return self._send(200, {"doppler_logging_endpoint": doppler})

    def _v3_list(self, path: str) -> None:
        """What Log Cache's auth proxy asks to learn which sources a token reads: the apps it can see
        (no service instances here); 401 for a token CC does not know."""
        apps = self._readable(self.headers.get("Authorization"))
        if apps is None:
            return self._send(401, {"errors": [{"code": 1000, "title": "CF-InvalidAuthToken",
                                                "detail": "Invalid Auth Token"}]})
        guids = apps if path == "/v3/apps" else []
        return self._send(200, {"pagination": {"total_results": len(guids), "next": None},
                                "resources": [{"guid": g, "name": f"app-{g[:8]}"} for g in guids]})

    # ---- signed tokens (harness.protocol.uaa) next to the harness's opaque ones -----------------------

    def _jwt_grant(self, authorization: str | None) -> Grant | None:
        """The grant of a signed token as Cloud Controller reads it (bearer in any case, signature,
        expiry, cloud_controller audience); None for an invalid one."""
        claims = uaa.cc_identity(self.uaa.key.public_pem, authorization) if self.uaa else None
        return self.tokens.grants.get(uaa.identity_name(claims)) if claims else None

    def _is_jwt(self, authorization: str | None) -> bool:
        return bool(self.uaa) and uaa.looks_like_jwt(trim_bearer_any_case(authorization or ""))

    def _log_access(self, authorization: str | None, app_id: str) -> int:
        if not self._is_jwt(authorization):
            return self.tokens.log_access(authorization, app_id)
        grant = self._jwt_grant(authorization)
        if grant is None:
            return 401
        return 200 if app_id in self.tokens.apps and ("*" in grant.apps or app_id in grant.apps) else 404

    def _readable(self, authorization: str | None) -> list[str] | None:
        if not self._is_jwt(authorization):
            return readable_apps(self.tokens, authorization)
        grant = self._jwt_grant(authorization)
        return None if grant is None else sorted(a for a in self.tokens.apps if "*" in grant.apps or a in grant.apps)

    def _scopes(self, token: str) -> list[str] | None:
        """UAA's check_token: the scopes of a valid token (signed or the harness's opaque ones)."""
        if self.uaa and uaa.looks_like_jwt(token):
            claims = self.uaa.decode(token, audience_id=None)
            return list(claims.get("scope", [])) if claims else None
        return self.tokens.check_token(token)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length", 0))
        return {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}

    def _oauth_token(self) -> None:
        if not self.uaa:
            return self._send(404, {})
        basic = None
        if (value := self.headers.get("Authorization", "")).lower().startswith("basic "):
            user, _, secret = base64.b64decode(value[6:]).decode().partition(":")
            basic = (unquote_plus(user), unquote_plus(secret))
        status, body = self.uaa.grant(self._form(), basic)
        log_event("uaa", "token", status=status, grant_type=body.get("error") or "issued")
        return self._send(status, body)

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?")[0] == "/oauth/token":
            return self._oauth_token()
        if self.path.split("?")[0] != "/check_token":
            return self._send(404, {})
        if not self._uaa_client_ok():
            return self._send(401, {"error": "unauthorized"})
        token = self._form().get("token", "")
        scopes = self._scopes(token)
        if scopes is None:
            return self._send(400, {"error": "invalid_token", "error_description": "Invalid token"})
        return self._send(200, {"scope": scopes, "client_id": "cf"})

    def _uaa_client_ok(self) -> bool:
        expected = "Basic " + base64.b64encode(b"doppler:secret").decode()
        return self.headers.get("Authorization") == expected

    def log_message(self, fmt: str, *args: object) -> None:
        log_event("cc", "request", line=fmt % args)


#: What the harness may set on a running CC (``set_runtime``): the advertised logger endpoint's
#: scheme and port, which cells of one topology vary (the seed's "advertised port must match").
RUNTIME_SETTINGS = {"CF_LOGGER_SCHEME": "wss?|https?", "CF_LOGGER_PORT": "[0-9]{1,5}"}


def advertise() -> str:
    """Build ``/v2/info`` and ``/`` from the environment; the doppler endpoint they name."""
    system_domain = os.environ.get("CF_SYSTEM_DOMAIN", "sys.example.com")
    scheme = os.environ.get("CF_LOGGER_SCHEME", "wss")
    port = os.environ.get("CF_LOGGER_PORT", "443")
    api_scheme = os.environ.get("CF_API_SCHEME", "https")
    doppler = f"{scheme}://doppler.{system_domain}:{port}"
    api = f"{api_scheme}://api.{system_domain}"
    # Log Cache and the RLP gateway are HTTPS-only behind gorouter in cf-deployment: the root
    # document's links say https whatever scheme the harness's API uses.
    log_scheme = os.environ.get("CF_LOG_SCHEME", "https")
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
        "log_stream": {"href": f"{log_scheme}://log-stream.{system_domain}"},
        "log_cache": {"href": f"{log_scheme}://log-cache.{system_domain}"},
        "uaa": {"href": f"{api_scheme}://uaa.{system_domain}"},
    }}
    return doppler


def main() -> None:
    load_runtime()
    doppler = advertise()
    system_domain = os.environ.get("CF_SYSTEM_DOMAIN", "sys.example.com")
    api_scheme = os.environ.get("CF_API_SCHEME", "https")
    CloudController.tokens = TokenTable.from_dict(env_json("CF_TOKENS", {}))  # type: ignore[arg-type]
    if key := os.environ.get("UAA_SIGNING_KEY"):
        CloudController.uaa = uaa_from_env(key, f"{api_scheme}://uaa.{system_domain}{uaa.ISSUER_PATH}")
    port_num = int(os.environ.get("CC_PORT", "9022"))
    log_event("cc", "listening", port=port_num, doppler_logging_endpoint=doppler)
    ThreadingHTTPServer(("0.0.0.0", port_num), CloudController).serve_forever()


def uaa_from_env(private_pem: str, issuer: str) -> uaa.Uaa:
    """The UAA stand-in: users and clients from ``UAA_USERS`` / ``UAA_CLIENTS`` (JSON), signing with
    the private key the harness generated for this deployment."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    users = {name: uaa.User(u["password"], tuple(u.get("scopes", ())))
             for name, u in env_json("UAA_USERS", {}).items()}  # type: ignore[union-attr]
    clients = {name: uaa.Client(c.get("secret", ""), tuple(c.get("authorities", ())))
               for name, c in env_json("UAA_CLIENTS", {"cf": {"secret": ""}}).items()}  # type: ignore[union-attr]
    return uaa.Uaa(uaa.SigningKey(os.environ.get("UAA_KEY_ID", uaa.KEY_ID), private_pem, public), issuer,
                   users, clients)
