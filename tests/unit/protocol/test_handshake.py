from __future__ import annotations

import pytest

from harness.protocol.handshake import check_upgrade

GOOD = [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]


def test_valid_handshake_passes() -> None:
    assert check_upgrade("GET", GOOD) is None


@pytest.mark.parametrize("method, headers, status, reason", [
    ("GET", GOOD[1:], 400, "'upgrade' token not found in 'Connection'"),
    ("GET", [GOOD[0], *GOOD[2:]], 400, "'websocket' token not found in 'Upgrade'"),
    ("POST", GOOD, 405, "not GET"),
    ("GET", [*GOOD[:2], ("Sec-WebSocket-Version", "8"), GOOD[3]], 400, "unsupported version"),
    ("GET", [*GOOD[:3], ("Sec-WebSocket-Key", "c2hvcnQ=")], 400, "16-byte"),
])
def test_rejections_follow_gorilla_order(method: str, headers: list[tuple[str, str]], status: int, reason: str) -> None:
    rejection = check_upgrade(method, headers)
    assert rejection is not None and rejection.status == status and reason in rejection.reason
    assert rejection.body == f"{'Bad Request' if status == 400 else 'Method Not Allowed'}\n".encode()
    assert ("Sec-Websocket-Version", "13") in rejection.headers


def test_plain_get_after_lb_stripped_upgrade_is_400() -> None:
    rejection = check_upgrade("GET", [("Host", "doppler"), ("Connection", "close")])
    assert rejection is not None and rejection.status == 400
