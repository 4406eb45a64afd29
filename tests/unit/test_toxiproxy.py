"""Which fault proxy a deployment runs and how its readiness is judged: from ``GET /version``
alone, so the real Toxiproxy image (which logs nothing the harness knows) can be swapped in."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from harness import toxiproxy
from harness.cf.faultproxy import VERSION, FaultProxyServer


def test_default_is_the_cf_image_faultproxy_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(toxiproxy.IMAGE_ENV, raising=False)
    assert toxiproxy.fault_proxy_image("harness-cf:abc") == toxiproxy.FaultProxyImage(
        "harness-cf:abc", ("faultproxy",), False)


def test_env_swaps_in_an_image_told_to_listen_on_all_interfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(toxiproxy.IMAGE_ENV, "ghcr.io/shopify/toxiproxy:2.12.0")
    chosen = toxiproxy.fault_proxy_image("harness-cf:abc")
    assert chosen.image == "ghcr.io/shopify/toxiproxy:2.12.0" and chosen.swapped
    assert chosen.command == ("-host=0.0.0.0", "-port=8474")  # its entrypoint is /toxiproxy


@pytest.mark.parametrize("status,body,version", [
    (200, b'{"version": "2.12.0"}\n', "2.12.0"),  # Toxiproxy >= 2.7
    (200, b"2.5.0", None),  # plain text before 2.6: not an API this harness speaks to
    (200, b'{"version": ""}', None),
    (503, b'{"version": "2.12.0"}', None),
    (200, b"<html>", None),
])
def test_readiness_needs_a_json_version(status: int, body: bytes, version: str | None) -> None:
    assert toxiproxy.version_ready(status, body) == version


def test_wait_version_reads_a_running_server_and_gives_up_on_a_silent_port() -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        async def start() -> asyncio.Server:
            return await asyncio.start_server(FaultProxyServer().handle, "127.0.0.1", 0)

        api = asyncio.run_coroutine_threadsafe(start(), loop).result(5)
        port = api.sockets[0].getsockname()[1]
        assert toxiproxy.wait_version(f"http://127.0.0.1:{port}", 5) == VERSION
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            dead = unused.getsockname()[1]
        assert toxiproxy.wait_version(f"http://127.0.0.1:{dead}", 0.3) is None
        loop.call_soon_threadsafe(api.close)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
