from __future__ import annotations

from harness.protocol import headers as hdr

UPGRADE = [("Host", "doppler.sys.example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
           ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]


def test_router_appends_to_existing_xff_and_keeps_client_xfp() -> None:
    out = hdr.router_request([("Host", "a"), ("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-Proto", "https")],
                             client_ip="10.0.0.5", tls=False, request_id="rid", now_ms=7)
    assert hdr.get(out, "X-Forwarded-For") == "1.1.1.1, 10.0.0.5"
    assert hdr.get(out, "X-Forwarded-Proto") == "https"
    assert hdr.get(out, "X-Vcap-Request-Id") == "rid" and hdr.get(out, "X-Request-Start") == "7"


def test_router_sets_xfp_when_absent_and_overwrites_request_id() -> None:
    out = hdr.router_request([("Host", "a"), ("X-Vcap-Request-Id", "client-made")], client_ip="10.0.0.5",
                             tls=True, request_id="new", now_ms=1)
    assert hdr.get(out, "X-Forwarded-Proto") == "https" and hdr.get(out, "X-Vcap-Request-Id") == "new"


def test_router_keeps_upgrade_headers_on_upgrade_requests() -> None:
    out = hdr.router_request(UPGRADE, client_ip="10.0.0.5", tls=False, request_id="r", now_ms=1)
    assert hdr.get(out, "Upgrade") == "websocket" and hdr.has_token(out, "Connection", "upgrade")


def test_router_drops_hop_by_hop_on_plain_requests() -> None:
    out = hdr.router_request([("Host", "a"), ("Connection", "keep-alive"), ("Keep-Alive", "5")],
                             client_ip="1.2.3.4", tls=False, request_id="r", now_ms=1)
    assert hdr.get(out, "Keep-Alive") is None and hdr.get(out, "Connection") == "close"


def test_elb_strips_upgrade_and_sets_forwarding_headers() -> None:
    out = hdr.elb_request([*UPGRADE, ("X-Forwarded-Proto", "spoofed")], client_ip="203.0.113.9", proto="http", port=80)
    assert hdr.get(out, "Upgrade") is None and not hdr.is_upgrade(out)
    assert hdr.get(out, "X-Forwarded-For") == "203.0.113.9"
    assert hdr.get(out, "X-Forwarded-Proto") == "http" and hdr.get(out, "X-Forwarded-Port") == "80"


def test_tokens_are_case_insensitive_lists() -> None:
    assert hdr.has_token([("Connection", "keep-alive, Upgrade")], "connection", "upgrade")
    assert hdr.is_upgrade([("connection", "UPGRADE"), ("upgrade", "WebSocket")])


def test_host_port_is_ignored_for_lookup() -> None:
    assert hdr.host_without_port("api.sys.example.com:4443") == "api.sys.example.com"
    assert hdr.host_without_port("[::1]:80") == "[::1]"
    assert hdr.host_without_port(None) == ""
