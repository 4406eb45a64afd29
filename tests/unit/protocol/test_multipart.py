from __future__ import annotations

import pytest

from harness.protocol import multipart


def test_round_trip_keeps_binary_parts() -> None:
    parts = [b"\x0a\x01a\r\n--x", b"", b"\xff" * 100]
    ctype, body = multipart.encode(parts, boundary="b0undary")
    assert ctype == "multipart/x-protobuf; boundary=b0undary"
    assert multipart.decode(ctype, body) == parts


def test_missing_boundary_is_a_bad_server_response() -> None:
    with pytest.raises(ValueError, match="bad server response"):
        multipart.decode("multipart/x-protobuf", b"")
