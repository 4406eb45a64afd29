"""Blocking HTTP calls to internal services (CC, UAA, Doppler), run in a thread from asyncio code."""

from __future__ import annotations

import base64
import ssl
import urllib.error
import urllib.request


def call(url: str, *, method: str = "GET", headers: dict[str, str] | None = None, data: bytes | None = None,
         basic_auth: tuple[str, str] | None = None, timeout: float = 5.0, context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body); HTTP error statuses are returned, not raised."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if basic_auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(basic_auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()
