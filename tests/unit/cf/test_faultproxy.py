"""The fault proxy speaks the Toxiproxy API as toxiproxy-python calls it, and its toxics act on
real loopback TCP connections (no Docker)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Iterator

import pytest
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.cf.faultproxy import VERSION, FaultProxyServer
from tests.unit.cf.conftest import loop_in_a_thread


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    yield from loop_in_a_thread()


@pytest.fixture
def server(loop: asyncio.AbstractEventLoop) -> Iterator[Toxiproxy]:
    fps = FaultProxyServer()
    port = _free_port()

    async def start() -> asyncio.Server:
        return await asyncio.start_server(fps.handle, "127.0.0.1", port)

    api = asyncio.run_coroutine_threadsafe(start(), loop).result(5)
    APIConsumer.host, APIConsumer.port = "127.0.0.1", port
    yield Toxiproxy()
    asyncio.run_coroutine_threadsafe(fps.reset(), loop).result(5)
    loop.call_soon_threadsafe(api.close)


@pytest.fixture
def echo(loop: asyncio.AbstractEventLoop) -> str:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def start() -> asyncio.Server:
        return await asyncio.start_server(handle, "127.0.0.1", 0)

    srv = asyncio.run_coroutine_threadsafe(start(), loop).result(5)
    return f"127.0.0.1:{srv.sockets[0].getsockname()[1]}"


def _connect(proxy_listen: str) -> socket.socket:
    host, port = proxy_listen.rsplit(":", 1)
    return socket.create_connection(("127.0.0.1" if host == "0.0.0.0" else host, int(port)), timeout=5)


def _roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_version_and_proxy_crud_as_the_client_calls_it(server: Toxiproxy, echo: str) -> None:
    assert json.loads(server.version()) == {"version": VERSION}  # JSON since Toxiproxy 2.6
    proxy = server.create(upstream=echo, name="p1")
    assert proxy.listen.startswith("127.0.0.1:") and not proxy.listen.endswith(":0")
    assert set(server.proxies()) == {"p1"}
    with pytest.raises(ProxyExists):
        server.create(upstream=echo, name="p1")
    proxy.add_toxic(type="latency", attributes={"latency": 10})
    assert set(proxy.toxics()) == {"latency_downstream"}
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no_such_toxic")
    proxy.destroy_toxic("latency_downstream")
    with pytest.raises(NotFound):
        APIConsumer.delete("/proxies/p1/toxics/latency_downstream")
    assert server.reset()
    server.destroy(proxy)
    assert server.proxies() == {}


def test_populate_replaces_changed_proxies(server: Toxiproxy, echo: str) -> None:
    made = server.populate([{"name": "a", "upstream": echo, "listen": "127.0.0.1:0"},
                            {"name": "b", "upstream": echo, "listen": "127.0.0.1:0"}])
    assert {p.name for p in made} == {"a", "b"}
    resp = APIConsumer.post("/populate", json=[{"name": "a", "upstream": echo, "listen": "127.0.0.1:0"}])
    assert resp.status_code == 201 and [p["name"] for p in resp.json()["proxies"]] == ["a"]


def test_data_passes_and_latency_delays_it(server: Toxiproxy, echo: str) -> None:
    proxy = server.create(upstream=echo, name="lat")
    with _connect(proxy.listen) as sock:
        assert _roundtrip(sock, b"hello") == b"hello"
        proxy.add_toxic(type="latency", attributes={"latency": 300, "jitter": 0})
        start = time.monotonic()
        assert _roundtrip(sock, b"again") == b"again"
        assert time.monotonic() - start >= 0.29


def test_disable_drops_connections_and_stops_listening(server: Toxiproxy, echo: str) -> None:
    proxy = server.create(upstream=echo, name="dis")
    sock = _connect(proxy.listen)
    proxy.disable()
    assert sock.recv(10) == b""
    with pytest.raises(OSError):
        _connect(proxy.listen)
    proxy.enable()


def test_reset_peer_sends_rst_to_connections_accepted_under_it(server: Toxiproxy, echo: str) -> None:
    """Toxiproxy sets SO_LINGER 0 only on connections accepted while a reset_peer toxic exists; it
    fires on the first chunk in its direction (the conformance suite covers the FIN case)."""
    proxy = server.create(upstream=echo, name="rst")
    proxy.add_toxic(type="reset_peer", attributes={"timeout": 0})
    with _connect(proxy.listen) as sock:
        sock.sendall(b"y")
        with pytest.raises(ConnectionResetError):
            sock.recv(10)


def test_limit_data_closes_after_the_byte_budget(server: Toxiproxy, echo: str) -> None:
    proxy = server.create(upstream=echo, name="lim")
    proxy.add_toxic(type="limit_data", stream="downstream", attributes={"bytes": 10})
    with _connect(proxy.listen) as sock:
        sock.sendall(b"0123456789abcdef")
        got = b""
        while chunk := sock.recv(100):
            got += chunk
        assert got == b"0123456789"


def test_timeout_swallows_data_then_closes(server: Toxiproxy, echo: str) -> None:
    proxy = server.create(upstream=echo, name="to")
    proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 300})
    with _connect(proxy.listen) as sock:
        start = time.monotonic()
        sock.sendall(b"held")
        assert sock.recv(10) == b""  # nothing came back, then the proxy closed
        assert time.monotonic() - start >= 0.25


def test_slicer_delivers_everything_in_small_pieces(server: Toxiproxy, echo: str) -> None:
    proxy = server.create(upstream=echo, name="sl")
    proxy.add_toxic(type="slicer", stream="downstream", attributes={"average_size": 8, "size_variation": 2,
                                                                     "delay": 2000})
    with _connect(proxy.listen) as sock:
        start = time.monotonic()
        assert _roundtrip(sock, b"z" * 400) == b"z" * 400
        assert time.monotonic() - start >= 0.04  # ~50 slices x 2 ms


def test_bandwidth_caps_throughput(server: Toxiproxy, echo: str) -> None:
    proxy = server.create(upstream=echo, name="bw")
    proxy.add_toxic(type="bandwidth", stream="downstream", attributes={"rate": 50})  # 50 KB/s
    with _connect(proxy.listen) as sock:
        start = time.monotonic()
        assert _roundtrip(sock, b"b" * 25_000) == b"b" * 25_000
        assert time.monotonic() - start >= 0.4


def test_toxicity_zero_never_applies(server: Toxiproxy, echo: str) -> None:
    proxy = server.create(upstream=echo, name="tox0")
    proxy.add_toxic(type="timeout", toxicity=0.0, attributes={"timeout": 0})
    with _connect(proxy.listen) as sock:
        assert _roundtrip(sock, b"free") == b"free"
