"""What the harness sets on a running stand-in (``/harness/env``): the router's PROXY reading and
the CC's advertised logger endpoint change without a restart, survive one, refuse what they cannot
set, and are answered to the container itself only. On loopback, no containers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from harness.cf import cloudcontroller, router, settings
from harness.cf.cloudcontroller import CloudController
from harness.cf.router import Router, serve_status
from harness.protocol import proxy_protocol as pp

NAMES = ("ROUTER_PROXY_PROTOCOL", "CF_LOGGER_SCHEME", "CF_LOGGER_PORT", "CF_SYSTEM_DOMAIN")


@pytest.fixture(autouse=True)
def runtime_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A file of this test's own; the environment the stand-ins read is restored afterwards."""
    path = tmp_path / "runtime.json"
    monkeypatch.setattr(settings, "RUNTIME_FILE", str(path))
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    yield path
    for name in NAMES:
        os.environ.pop(name, None)


@pytest.mark.parametrize(("query", "why"), [
    ("", "nothing to set: name one or more of ROUTER_PROXY_PROTOCOL"),
    ("ROUTER_ROUTES=x", "ROUTER_ROUTES cannot be set on the running node: only ROUTER_PROXY_PROTOCOL"),
    ("ROUTER_PROXY_PROTOCOL=yes", "ROUTER_PROXY_PROTOCOL='yes': must match true|false"),
])
def test_what_cannot_be_set_is_refused_and_nothing_changes(query: str, why: str, runtime_file: Path) -> None:
    assert settings.set_runtime(query, router.RUNTIME_SETTINGS) == why
    assert not runtime_file.exists() and "ROUTER_PROXY_PROTOCOL" not in os.environ


def test_a_setting_is_kept_for_a_restarted_process(runtime_file: Path) -> None:
    assert settings.set_runtime("CF_LOGGER_PORT=8443", cloudcontroller.RUNTIME_SETTINGS) == {"CF_LOGGER_PORT": "8443"}
    assert settings.set_runtime("CF_LOGGER_SCHEME=ws", cloudcontroller.RUNTIME_SETTINGS) == {"CF_LOGGER_SCHEME": "ws"}
    os.environ.pop("CF_LOGGER_PORT")  # a new process: the start environment only
    os.environ.pop("CF_LOGGER_SCHEME")
    settings.load_runtime()
    assert (os.environ["CF_LOGGER_SCHEME"], os.environ["CF_LOGGER_PORT"]) == ("ws", "8443")


LINE = pp.encode_v1("10.1.2.3", 40000, "10.9.9.9", 80)
GET = b"GET / HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n"


def test_the_router_reads_proxy_lines_once_switched_on_and_not_before() -> None:
    async def go() -> list[bytes]:
        async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(backend, "127.0.0.1", 0)
        r = Router("r", {"app.example.com": f"127.0.0.1:{server.sockets[0].getsockname()[1]}"}, False)
        front = await asyncio.start_server(r.handle, "127.0.0.1", 0)
        firsts = []
        for query in ("", "ROUTER_PROXY_PROTOCOL=true"):
            if query:
                assert r.set_runtime(query)[0] == 200
            reader, writer = await asyncio.open_connection("127.0.0.1", front.sockets[0].getsockname()[1])
            writer.write(LINE + GET)
            firsts.append((await asyncio.wait_for(reader.read(), 5)).split(b"\r\n", 1)[0])
            writer.close()
        assert r.seen[-1]["proxy_protocol"]["source_ip"] == "10.1.2.3"
        front.close()
        server.close()
        return firsts

    assert asyncio.run(go()) == [b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 200 OK"]


def _serve(server: ThreadingHTTPServer) -> Iterator[int]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _get(port: int, path: str, source: str = "127.0.0.1") -> tuple[int, bytes]:
    """GET from ``source`` (127.0.0.2: another address of this machine, as a router or LB would be)."""
    sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture
def cc() -> Iterator[int]:
    os.environ.update(CF_SYSTEM_DOMAIN="sys.example.com", CF_LOGGER_SCHEME="wss", CF_LOGGER_PORT="443")
    cloudcontroller.advertise()
    yield from _serve(ThreadingHTTPServer(("127.0.0.1", 0), CloudController))


def test_the_cc_advertises_the_port_it_is_given_from_then_on(cc: int) -> None:
    def endpoint() -> str:
        return json.loads(_get(cc, "/v2/info")[1])["doppler_logging_endpoint"]

    assert endpoint() == "wss://doppler.sys.example.com:443"
    assert _get(cc, "/harness/env?CF_LOGGER_PORT=8443")[0] == 200
    assert endpoint() == "wss://doppler.sys.example.com:8443"
    assert json.loads(_get(cc, "/")[1])["links"]["logging"]["href"] == "wss://doppler.sys.example.com:8443"
    assert _get(cc, "/harness/env?CF_LOGGER_PORT=443x")[0] == 400


def test_a_setting_asked_from_outside_the_container_is_not_found(cc: int) -> None:
    assert _get(cc, "/harness/env?CF_LOGGER_PORT=8443", source="127.0.0.2")[0] == 404
    assert json.loads(_get(cc, "/v2/info")[1])["doppler_logging_endpoint"].endswith(":443")


@pytest.fixture
def status() -> Iterator[tuple[Router, int]]:
    r = Router("r", {}, False)
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = serve_status(r, port)
    yield r, port
    server.shutdown()
    server.server_close()


def test_the_router_status_port_switches_proxy_reading_for_the_container_only(status: tuple[Router, int]) -> None:
    r, port = status
    assert _get(port, "/harness/env?ROUTER_PROXY_PROTOCOL=true", source="127.0.0.2")[0] == 404
    assert _get(port, "/harness/environ?ROUTER_PROXY_PROTOCOL=true")[0] == 404  # the path exactly
    assert not r.proxy_protocol
    assert _get(port, "/harness/env?ROUTER_PROXY_PROTOCOL=maybe")[0] == 400
    assert _get(port, "/harness/env?ROUTER_PROXY_PROTOCOL=true") == (200, b'{"proxy_protocol": true}')
    assert r.proxy_protocol
