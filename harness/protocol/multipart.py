"""Recent logs as TC served them: ``multipart/x-protobuf``, one envelope per part, no part headers."""

from __future__ import annotations

import secrets


def encode(envelopes: list[bytes], boundary: str | None = None) -> tuple[str, bytes]:
    """Return (content_type, body) the way Go's mime/multipart ``CreatePart(nil)`` writes it."""
    boundary = boundary or secrets.token_hex(30)
    body = b"".join(b"--" + boundary.encode() + b"\r\n\r\n" + env + b"\r\n" for env in envelopes)
    body += b"--" + boundary.encode() + b"--\r\n"
    return f"multipart/x-protobuf; boundary={boundary}", body


def decode(content_type: str, body: bytes) -> list[bytes]:
    """Split a recent-logs body; ValueError without a boundary (noaa: ``bad server response``)."""
    params = dict(p.strip().split("=", 1) for p in content_type.split(";")[1:] if "=" in p)
    boundary = params.get("boundary", "").strip('"')
    if not boundary:
        raise ValueError("bad server response: no multipart boundary")
    delimiter = b"--" + boundary.encode()
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, payload = chunk.partition(b"\r\n\r\n")
        parts.append(payload[:-2] if payload.endswith(b"\r\n") else payload)
    return parts
