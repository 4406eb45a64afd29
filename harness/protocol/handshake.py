"""WebSocket handshake checks in the order gorilla/websocket's Upgrader applies them (v1.5.3).

The Traffic Controller returns these after its auth middleware passed; the body is only the status
text and ``Sec-Websocket-Version: 13`` is set (gorilla ``returnError``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from harness.protocol.headers import Headers, get, has_token

STATUS_TEXT = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
               500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass(frozen=True)
class Rejection:
    status: int
    reason: str  # gorilla's HandshakeError text, logged by the server, not sent

    @property
    def body(self) -> bytes:
        return f"{STATUS_TEXT[self.status]}\n".encode()

    headers: tuple[tuple[str, str], ...] = (("Sec-Websocket-Version", "13"),
                                            ("Content-Type", "text/plain; charset=utf-8"),
                                            ("X-Content-Type-Options", "nosniff"))


_PREFIX = "websocket: the client is not using the websocket protocol: "


def check_upgrade(method: str, headers: Headers) -> Rejection | None:
    """None when gorilla would upgrade, else the rejection it would send."""
    if not has_token(headers, "Connection", "upgrade"):
        return Rejection(400, _PREFIX + "'upgrade' token not found in 'Connection' header")
    if not has_token(headers, "Upgrade", "websocket"):
        return Rejection(400, _PREFIX + "'websocket' token not found in 'Upgrade' header")
    if method != "GET":
        return Rejection(405, "websocket: the client is not using the websocket protocol: request method is not GET")
    if not has_token(headers, "Sec-Websocket-Version", "13"):
        return Rejection(400, "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header")
    if not _valid_key(get(headers, "Sec-WebSocket-Key")):
        return Rejection(400, "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be "
                              "Base64 encoded value of 16-byte in length")
    return None


def _valid_key(key: str | None) -> bool:
    if not key:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False
