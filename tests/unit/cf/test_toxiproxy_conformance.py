"""Toxiproxy 2.12 conformance: the behaviours Toxiproxy's own tests assert (Shopify/toxiproxy
``api_test.go``, ``link_test.go``, ``toxics/*_test.go`` at v2.12.0), re-expressed against any
server that speaks its API, plus what its source does where no test of its own pins it (named
per test). All traffic is on loopback; nothing here needs Docker.

Which server: by default the harness's fault proxy, in-process. ``HARNESS_TOXIPROXY_URL=http://
127.0.0.1:8474`` points the suite at a running server that shares this machine's loopback (e.g.
``docker run --network host ghcr.io/shopify/toxiproxy:2.12.0``); ``HARNESS_TOXIPROXY_IMAGE=<image>``
starts that image itself (host network, so the engine must run on this machine).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from harness.cf.faultproxy import FaultProxyServer
from tests.unit.cf.conftest import loop_in_a_thread

#: Lower bounds get this much slack: sleeps and timers are never early by more than a clock tick.
TICK = 0.02


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop thread for the in-process server and the upstream test servers."""
    yield from loop_in_a_thread()


def _wait_version(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{url}/version", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no answer from {url}/version within {timeout:g} s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def server_url(loop: asyncio.AbstractEventLoop) -> Iterator[str]:
    """The API under test: HARNESS_TOXIPROXY_URL, HARNESS_TOXIPROXY_IMAGE, or the fault proxy."""
    if url := os.environ.get("HARNESS_TOXIPROXY_URL"):
        _wait_version(url)
        yield url.rstrip("/")
        return
    if image := os.environ.get("HARNESS_TOXIPROXY_IMAGE"):
        import docker

        port = _free_port()
        container = docker.from_env().containers.run(image, ["-host=127.0.0.1", f"-port={port}"],
                                                     network_mode="host", detach=True, auto_remove=True)
        try:
            _wait_version(f"http://127.0.0.1:{port}")
            yield f"http://127.0.0.1:{port}"
        finally:
            container.stop(timeout=2)
        return
    port = _free_port()

    async def start() -> asyncio.Server:
        return await asyncio.start_server(FaultProxyServer().handle, "127.0.0.1", port)

    api = asyncio.run_coroutine_threadsafe(start(), loop).result(5)
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(api.close)


class Api:
    """Raw HTTP against the server: the suite asserts statuses and bodies, not a client's view."""

    def __init__(self, url: str) -> None:
        self.url, self.http = url, requests.Session()

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        data = body if isinstance(body, (bytes, str)) else None if body is None else json.dumps(body)
        return self.http.request(method, f"{self.url}{path}", data=data, timeout=10, **kwargs)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        resp = self.call(method, path, body)
        assert resp.status_code == status, (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def proxy(self, upstream: str, name: str = "p", **extra: Any) -> dict[str, Any]:
        return self.ok("POST", "/proxies", {"name": name, "listen": "127.0.0.1:0", "upstream": upstream, **extra},
                       201)

    def toxic(self, proxy: str, **body: Any) -> dict[str, Any]:
        return self.ok("POST", f"/proxies/{proxy}/toxics", body)


@pytest.fixture
def api(server_url: str) -> Iterator[Api]:
    client = Api(server_url)
    yield client
    for name in client.ok("GET", "/proxies"):
        client.call("DELETE", f"/proxies/{name}")


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]


@pytest.fixture
def serve(loop: asyncio.AbstractEventLoop) -> Iterator[Callable[[Handler], str]]:
    """Start a TCP server on loopback with ``handler``; returns its address."""
    servers: list[asyncio.Server] = []

    def start(handler: Handler) -> str:
        async def run() -> asyncio.Server:
            return await asyncio.start_server(handler, "127.0.0.1", 0)

        srv = asyncio.run_coroutine_threadsafe(run(), loop).result(5)
        servers.append(srv)
        return f"127.0.0.1:{srv.sockets[0].getsockname()[1]}"

    yield start
    for srv in servers:
        loop.call_soon_threadsafe(srv.close)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


@pytest.fixture
def echo(serve: Callable[[Handler], str]) -> str:
    return serve(_echo)


def connect(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    return socket.create_connection(("127.0.0.1" if host in ("", "::", "0.0.0.0") else host, int(port)), timeout=5)


def read_until_closed(sock: socket.socket, limit: int = 1 << 20) -> tuple[bytes, str]:
    """Everything until the peer closes, and how: ``fin`` or ``rst``."""
    got = b""
    try:
        while len(got) < limit:
            chunk = sock.recv(65536)
            if not chunk:
                return got, "fin"
            got += chunk
    except ConnectionResetError:
        return got, "rst"
    return got, "open"


def roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def silent(sock: socket.socket, wait: float) -> bool:
    """Nothing arrives and the connection stays up for ``wait`` s."""
    sock.settimeout(wait)
    try:
        sock.recv(1)
        return False
    except TimeoutError:
        return True
    except ConnectionError:
        return False
    finally:
        sock.settimeout(5)


# -- API: api_test.go ---------------------------------------------------------------------------

def test_version_is_json(api: Api) -> None:
    """TestVersionEndpointReturnsVersion; JSON since 2.6, valid JSON since 2.7 (CHANGELOG)."""
    resp = api.call("GET", "/version")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    assert set(resp.json()) == {"version"} and resp.json()["version"].startswith("2.")


def test_browsers_get_403_others_200(api: Api) -> None:
    """TestBrowserGets403, TestNonBrowserGets200."""
    assert api.call("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0 (Linux x86_64)"}).status_code == 403
    assert api.call("GET", "/proxies", headers={"User-Agent": "toxiproxy-cli"}).status_code == 200


def test_index_with_no_proxies_is_an_empty_object(api: Api) -> None:
    assert api.ok("GET", "/proxies") == {}


@pytest.mark.parametrize("missing", ["name", "upstream"])
def test_create_without_a_required_field_is_400(api: Api, missing: str) -> None:
    """TestCreateProxyBlankName, TestCreateProxyBlankUpstream."""
    body = {"name": "p", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}
    body[missing] = ""
    resp = api.call("POST", "/proxies", body)
    assert resp.status_code == 400 and json.loads(resp.text) == {"error": f"missing required field: {missing}",
                                                                   "status": 400}


def test_create_get_and_conflicts(api: Api, echo: str) -> None:
    """TestCreateAndGetProxy, TestCreateProxyNameConflict (409), TestCreateProxyPortConflict
    (500: the listen error is not an API error)."""
    made = api.proxy(echo, "one")
    assert made["name"] == "one" and made["upstream"] == echo and made["enabled"] is True and made["toxics"] == []
    assert not made["listen"].endswith(":0")
    assert api.ok("GET", "/proxies/one") == made
    resp = api.call("POST", "/proxies", {"name": "one", "listen": "127.0.0.1:0", "upstream": echo})
    assert resp.status_code == 409 and json.loads(resp.text)["error"] == "proxy already exists"
    resp = api.call("POST", "/proxies", {"name": "two", "listen": made["listen"], "upstream": echo})
    assert resp.status_code == 500
    assert set(api.ok("GET", "/proxies")) == {"one"}


def test_disabled_proxy_does_not_listen_until_enabled(api: Api, echo: str) -> None:
    """TestCreateDisabledProxy, TestCreateDisabledProxyAndEnable."""
    port = _free_port()
    made = api.proxy(echo, "off", listen=f"127.0.0.1:{port}", enabled=False)
    assert made["enabled"] is False
    with pytest.raises(OSError):
        connect(made["listen"])
    assert api.ok("POST", "/proxies/off", {"enabled": True})["enabled"] is True
    with connect(made["listen"]) as sock:
        assert roundtrip(sock, b"on") == b"on"


def test_delete_stops_the_listener_and_drops_connections(api: Api, echo: str) -> None:
    """TestDeleteProxy; proxy.go ``stop`` closes every connection."""
    made = api.proxy(echo, "gone")
    sock = connect(made["listen"])
    assert roundtrip(sock, b"x") == b"x"
    assert api.call("DELETE", "/proxies/gone").status_code == 204
    assert read_until_closed(sock)[1] in ("fin", "rst")
    with pytest.raises(OSError):
        connect(made["listen"])
    assert api.call("DELETE", "/proxies/gone").status_code == 404


def test_populate_keeps_identical_proxies_and_replaces_changed_ones(api: Api, echo: str,
                                                                    serve: Callable[[Handler], str]) -> None:
    """TestPopulateExistingProxy: ``localhost:PORT`` resolves to the listening 127.0.0.1:PORT, so
    that proxy is kept (its toxic survives); one whose upstream changed is replaced."""
    one_port, two_port = _free_port(), _free_port()
    api.proxy(echo, "one", listen=f"localhost:{one_port}")
    api.proxy(echo, "two", listen=f"127.0.0.1:{two_port}")
    api.toxic("one", type="latency", attributes={"latency": 1})
    other = serve(_echo)
    resp = api.call("POST", "/populate", [{"name": "one", "listen": f"localhost:{one_port}", "upstream": echo},
                                          {"name": "two", "listen": f"127.0.0.1:{two_port}", "upstream": other}])
    assert resp.status_code == 201
    proxies = {p["name"]: p for p in resp.json()["proxies"]}
    assert [t["name"] for t in proxies["one"]["toxics"]] == ["latency_downstream"]
    assert proxies["two"]["upstream"] == other and proxies["two"]["enabled"] is True


def test_populate_defaults_to_enabled_and_honours_disabled(api: Api, echo: str) -> None:
    """TestPopulateDefaultEnabled, TestPopulateDisabledProxy."""
    made = api.ok("POST", "/populate", [{"name": "on", "listen": "127.0.0.1:0", "upstream": echo},
                                        {"name": "off", "listen": "127.0.0.1:0", "upstream": echo,
                                         "enabled": False}], 201)
    assert {p["name"]: p["enabled"] for p in made["proxies"]} == {"on": True, "off": False}


def test_populate_validates_every_entry_first(api: Api, echo: str) -> None:
    """TestPopulateWithBadName: a missing name in entry 2 creates nothing, not even entry 1."""
    resp = api.call("POST", "/populate", [{"name": "one", "listen": "127.0.0.1:0", "upstream": echo},
                                          {"name": "", "listen": "", "upstream": ""}])
    assert resp.status_code == 400 and resp.json()["error"] == "missing required field: name at proxy 2"
    assert api.ok("GET", "/proxies") == {}


def test_populate_stops_at_a_listen_error_keeping_what_it_made(api: Api, echo: str) -> None:
    """TestPopulateProxyWithBadDataShouldReturnError: entry 2's listen is not an address; entry 1
    exists afterwards, entries 2 and 3 do not."""
    resp = api.call("POST", "/populate", [{"name": "one", "listen": "127.0.0.1:0", "upstream": echo},
                                          {"name": "two", "listen": "local373", "upstream": echo},
                                          {"name": "three", "listen": "127.0.0.1:0", "upstream": echo}])
    assert resp.status_code >= 400
    assert set(api.ok("GET", "/proxies")) == {"one"}


def test_reset_enables_proxies_and_removes_toxics(api: Api, echo: str) -> None:
    """TestResetState."""
    api.proxy(echo, "r", enabled=False)
    api.ok("POST", "/proxies/r", {"enabled": True})
    api.toxic("r", type="latency", attributes={"latency": 10})
    api.ok("POST", "/proxies/r", {"enabled": False})
    assert api.call("POST", "/reset").status_code == 204
    state = api.ok("GET", "/proxies/r")
    assert state["enabled"] is True and state["toxics"] == []


def test_toxic_defaults_names_and_conflicts(api: Api, echo: str) -> None:
    """TestAddToxic, TestAddConflictingToxic, TestAddConflictingToxicsMultistreamDefaults,
    TestAddNoop: name defaults to ``<type>_<stream>``, stream to downstream, toxicity to 1,
    attributes to zero; the same type on both streams is fine; the same name twice is 409."""
    api.proxy(echo, "t")
    up = api.toxic("t", type="latency", stream="upstream")
    down = api.toxic("t", type="latency")
    assert up == {"attributes": {"latency": 0, "jitter": 0}, "name": "latency_upstream", "type": "latency",
                  "stream": "upstream", "toxicity": 1}
    assert down["name"] == "latency_downstream" and down["stream"] == "downstream"
    resp = api.call("POST", "/proxies/t/toxics", {"type": "latency"})
    assert resp.status_code == 409 and resp.json()["error"] == "toxic already exists"
    noop = api.toxic("t", name="foobar", type="noop")
    assert (noop["type"], noop["stream"], noop["toxicity"]) == ("noop", "downstream", 1)


def test_several_toxics_of_one_type_list_in_the_order_added(api: Api, echo: str) -> None:
    """TestAddMultipleToxics, TestListingToxics; ``GetToxicArray`` lists upstream then downstream,
    each in the order added."""
    api.proxy(echo, "m")
    for name, stream in (("b", "downstream"), ("a", "downstream"), ("c", "upstream")):
        api.toxic("m", name=name, type="latency", stream=stream, attributes={"latency": 1})
    assert [t["name"] for t in api.ok("GET", "/proxies/m/toxics")] == ["c", "b", "a"]


def test_stream_is_case_insensitive_and_invalid_is_400(api: Api, echo: str) -> None:
    """TestInvalidStream; ``stream.ParseDirection`` lower-cases; the name keeps the spelling."""
    api.proxy(echo, "s")
    resp = api.call("POST", "/proxies/s/toxics", {"type": "latency", "stream": "sideways"})
    assert resp.status_code == 400
    assert resp.json()["error"] == "stream was invalid, can be either upstream or downstream"
    made = api.toxic("s", type="latency", stream="UpStream")
    assert made["stream"] == "UpStream" and made["name"] == "latency_UpStream"


def test_bad_bodies_are_400_unknown_attributes_dropped(api: Api, echo: str) -> None:
    """Go's JSON decoding (``AddToxicJson``, ``ProxyCreate``): unknown fields ignored, wrong
    types refused with 400 ``bad request body``; an unknown toxic type is 400."""
    api.proxy(echo, "b")
    made = api.toxic("b", type="latency", attributes={"latency": 5, "colour": "red"})
    assert made["attributes"] == {"latency": 5, "jitter": 0}
    for body in ({"type": "bandwidth", "attributes": {"rate": "fast"}},
                 {"type": "bandwidth", "attributes": {"rate": 1.5}},
                 {"type": "slicer", "toxicity": "high"}):
        resp = api.call("POST", "/proxies/b/toxics", body)
        assert resp.status_code == 400 and resp.json()["error"].startswith("bad request body"), body
    resp = api.call("POST", "/proxies", {"name": 5, "upstream": echo})
    assert resp.status_code == 400 and resp.json()["error"].startswith("bad request body")
    assert api.call("POST", "/proxies/b/toxics", {"type": "no_such"}).json()["error"] == "invalid toxic type"
    assert api.call("POST", "/proxies/b/toxics", b"{not json").status_code == 400


def test_update_and_remove_toxic(api: Api, echo: str) -> None:
    """TestUpdateToxics (attributes and toxicity change, other attributes kept), TestRemoveToxic."""
    api.proxy(echo, "u")
    api.toxic("u", type="latency", attributes={"latency": 100, "jitter": 10})
    made = api.ok("PATCH", "/proxies/u/toxics/latency_downstream", {"attributes": {"latency": 200},
                                                                    "toxicity": 0.5})
    assert made["attributes"] == {"latency": 200, "jitter": 10} and made["toxicity"] == 0.5
    assert api.call("DELETE", "/proxies/u/toxics/latency_downstream").status_code == 204
    assert api.call("GET", "/proxies/u/toxics/latency_downstream").status_code == 404
    assert api.call("DELETE", "/proxies/u/toxics/latency_downstream").status_code == 404


def test_wrong_method_is_405_unknown_path_404(api: Api, echo: str) -> None:
    """gorilla/mux as api.go configures it: a known path with another method -> 405."""
    api.proxy(echo, "w")
    for method, path in (("DELETE", "/proxies"), ("PUT", "/proxies/w"), ("GET", "/reset"), ("POST", "/version"),
                         ("GET", "/populate"), ("PUT", "/proxies/w/toxics")):
        assert api.call(method, path).status_code == 405, (method, path)
    assert api.call("GET", "/nothing/here").status_code == 404


def test_upstream_change_drops_connections_and_restarts_the_listener(api: Api, echo: str,
                                                                     serve: Callable[[Handler], str]) -> None:
    """proxy.go ``Update``: ``Differs`` (listen or upstream) -> stop (connections closed) -> start."""
    made = api.proxy(echo, "chg")
    sock = connect(made["listen"])
    assert roundtrip(sock, b"x") == b"x"

    async def tagged(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"new:" + await reader.read(100))
        await writer.drain()
        writer.close()

    after = api.ok("POST", "/proxies/chg", {"upstream": serve(tagged)})
    assert after["enabled"] is True and after["listen"] == made["listen"]
    assert read_until_closed(sock)[1] in ("fin", "rst")
    with connect(after["listen"]) as again:
        again.sendall(b"y")
        assert read_until_closed(again)[0] == b"new:y"


# -- toxics: toxics/*_test.go and link_test.go --------------------------------------------------

def _reply_then(handler_reply: bytes) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(handler_reply)
        await writer.drain()
        await reader.read()  # until the proxy closes
        writer.close()
    return handle


@pytest.mark.parametrize("stream,timeout", [("upstream", 0), ("upstream", 100), ("downstream", 100)])
def test_reset_peer_present_at_accept_sends_rst(api: Api, serve: Callable[[Handler], str], stream: str,
                                                timeout: int) -> None:
    """TestResetToxicNoTimeout, TestResetToxicWithTimeout(Downstream): the first chunk in the
    toxic's direction is dropped; ``timeout`` ms later the client reads ECONNRESET, then EOF."""
    made = api.proxy(serve(_reply_then(b"reply\n")), "rst")
    api.toxic("rst", type="reset_peer", stream=stream, attributes={"timeout": timeout})
    with connect(made["listen"]) as sock:
        start = time.monotonic()
        sock.sendall(b"reset toxic payload\n")
        got, how = read_until_closed(sock)
        assert (got, how) == (b"", "rst")
        assert time.monotonic() - start >= timeout / 1000 - TICK
        assert sock.recv(10) == b""


def test_reset_peer_added_to_a_live_connection_closes_with_fin(api: Api, echo: str) -> None:
    """link.go ``Start`` sets SO_LINGER 0 only for a reset_peer already in the chain; one added
    later fires on the next chunk, drops it and closes gracefully."""
    made = api.proxy(echo, "live")
    with connect(made["listen"]) as sock:
        assert roundtrip(sock, b"before") == b"before"
        api.toxic("live", type="reset_peer", attributes={"timeout": 0})
        assert silent(sock, 0.3)  # nothing fires until a chunk comes
        sock.sendall(b"after")
        assert read_until_closed(sock) == (b"", "fin")


def test_timeout_swallows_data_and_removal_closes(api: Api, serve: Callable[[Handler], str]) -> None:
    """TestTimeoutToxicClosesConnectionOnRemove: timeout 0 holds the connection open and drops
    what it gets; removing the toxic closes both sides, the data never arriving."""
    got: list[bytes] = []
    closed = threading.Event()

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.read())
        closed.set()
        writer.close()

    made = api.proxy(serve(record), "to")
    with connect(made["listen"]) as sock:
        assert roundtrip(sock, b"") == b""
        api.toxic("to", name="to_delete", type="timeout", stream="upstream", attributes={"timeout": 0})
        sock.sendall(b"dropped")
        assert silent(sock, 0.3)
        assert api.call("DELETE", "/proxies/to/toxics/to_delete").status_code == 204
        assert read_until_closed(sock)[0] == b""
        assert closed.wait(5) and got == [b""]


def test_timeout_timer_restarts_on_every_chunk(api: Api, echo: str) -> None:
    """toxics/timeout.go: ``time.After(timeout)`` is re-armed after each chunk, so a connection
    that keeps sending outlives the timeout; silence closes it one timeout after the last chunk."""
    made = api.proxy(echo, "tt")
    api.toxic("tt", type="timeout", stream="upstream", attributes={"timeout": 600})
    with connect(made["listen"]) as sock:
        start = time.monotonic()
        for _ in range(10):  # 10 x 100 ms = 1 s of traffic, longer than the 600 ms timeout
            sock.sendall(b"k")
            sent = time.monotonic()  # the proxy reads the chunk after this, so re-arms after it
            time.sleep(0.1)
        assert time.monotonic() - start > 0.6
        assert read_until_closed(sock) == (b"", "fin")
        # from the last send, not from after the sleep: a loaded machine oversleeps (seen 0.457 s)
        assert time.monotonic() - sent >= 0.6 - TICK


def test_latency_each_direction_and_two_toxics_add(api: Api, echo: str) -> None:
    """TestUpstreamLatency, TestDownstreamLatency, TestTwoLatencyToxics."""
    made = api.proxy(echo, "lat")
    api.toxic("lat", name="up", type="latency", stream="upstream", attributes={"latency": 100})
    with connect(made["listen"]) as sock:
        start = time.monotonic()
        assert roundtrip(sock, b"a") == b"a"
        assert time.monotonic() - start >= 0.1 - TICK
        api.toxic("lat", name="down1", type="latency", attributes={"latency": 100})
        api.toxic("lat", name="down2", type="latency", attributes={"latency": 100})
        start = time.monotonic()
        assert roundtrip(sock, b"b") == b"b"
        assert time.monotonic() - start >= 0.3 - TICK


def test_latency_is_pipelined_not_serialised(api: Api, echo: str) -> None:
    """TestLatencyToxicBandwidth: latency does not cap throughput. Each chunk is delayed from when
    it was read (1024 chunks may wait in line), so chunks sent 100 ms apart under 300 ms latency
    each arrive ~300 ms after they were sent; a proxy that reads, sleeps, writes holds the second
    chunk until the first one's sleep is over, delaying it ~500 ms."""
    made = api.proxy(echo, "pipe")
    api.toxic("pipe", type="latency", attributes={"latency": 300})
    sent: dict[bytes, float] = {}
    with connect(made["listen"]) as sock:
        def send() -> None:
            for i in range(6):
                sent[b"%02d" % i] = time.monotonic()
                sock.sendall(b"%02d" % i)
                time.sleep(0.1)

        sender = threading.Thread(target=send)
        sender.start()
        got, delays = b"", []
        while len(got) < 12:
            chunk = sock.recv(100)
            now = time.monotonic()
            for i in range(len(got), len(got) + len(chunk), 2):
                delays.append(now - sent[(got + chunk)[i:i + 2]])
            got += chunk
        sender.join()
    assert got == b"".join(b"%02d" % i for i in range(6))
    assert min(delays) >= 0.3 - TICK and max(delays) < 0.45, delays


def test_data_in_flight_drains_before_close(api: Api, serve: Callable[[Handler], str]) -> None:
    """TestNoDataDropped; link.go: end of stream travels the chain behind the data, so a server
    that writes and closes at once still delivers everything, after the latency, then EOF."""
    payload = bytes(range(256)) * 64

    async def burst(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()
        writer.close()

    made = api.proxy(serve(burst), "drain")
    api.toxic("drain", type="latency", attributes={"latency": 200})
    with connect(made["listen"]) as sock:
        start = time.monotonic()
        assert read_until_closed(sock) == (payload, "fin")
        assert time.monotonic() - start >= 0.2 - TICK


def test_bandwidth_rate_and_rate_zero_stalls(api: Api, echo: str) -> None:
    """TestBandwidthToxic: 100 KB at 500 KB/s takes ~0.2 s. bandwidth.go with rate 0 lets
    nothing through (its 100 ms slicing never shrinks the chunk)."""
    made = api.proxy(echo, "bw")
    api.toxic("bw", type="bandwidth", attributes={"rate": 500})
    with connect(made["listen"]) as sock:
        start = time.monotonic()
        assert roundtrip(sock, b"b" * 100_000) == b"b" * 100_000
        assert time.monotonic() - start >= 0.2 - TICK
        api.ok("PATCH", "/proxies/bw/toxics/bandwidth_downstream", {"attributes": {"rate": 0}})
        sock.sendall(b"stuck")
        assert silent(sock, 0.5)  # no byte comes back, and the connection stays up


def test_limit_data_counts_from_when_the_toxic_joins(api: Api, echo: str) -> None:
    """TestLimitDataToxic*: exactly ``bytes`` pass, the chunk crossing the budget is cut, then the
    connection closes; the state is created when the toxic joins the link (TestStateCreated), so
    bytes sent before it do not count."""
    made = api.proxy(echo, "lim")
    with connect(made["listen"]) as sock:
        assert roundtrip(sock, b"x" * 50) == b"x" * 50
        api.toxic("lim", type="limit_data", attributes={"bytes": 10})
        sock.sendall(b"0123456789abcdef")
        assert read_until_closed(sock) == (b"0123456789", "fin")


def test_slicer_keeps_every_byte(api: Api, echo: str) -> None:
    """TestSlicerToxic, TestSlicerToxicZeroSizeVariation."""
    made = api.proxy(echo, "sl")
    api.toxic("sl", type="slicer", attributes={"average_size": 10, "size_variation": 5, "delay": 100})
    api.toxic("sl", name="sl0", type="slicer", stream="upstream", attributes={"average_size": 7, "delay": 0})
    data = bytes(range(256)) * 20
    with connect(made["listen"]) as sock:
        assert roundtrip(sock, data) == data


def test_slow_close_delays_the_close_only(api: Api, serve: Callable[[Handler], str]) -> None:
    """toxics/slow_close.go: data passes at once, the close waits ``delay`` ms."""
    async def say_bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        await writer.drain()
        writer.close()

    made = api.proxy(serve(say_bye), "sc")
    api.toxic("sc", type="slow_close", attributes={"delay": 300})
    with connect(made["listen"]) as sock:
        start = time.monotonic()
        assert sock.recv(10) == b"bye"
        assert read_until_closed(sock) == (b"", "fin")
        assert time.monotonic() - start >= 0.3 - TICK


def test_toxicity_is_rolled_again_when_the_toxic_changes(api: Api, echo: str) -> None:
    """TestToxicity: a timeout toxic with toxicity 0 lets data through; updated to toxicity 1 it
    acts on the same live connection (``UpdateToxic`` re-runs the stub, which rolls again)."""
    made = api.proxy(echo, "tox")
    api.toxic("tox", name="timeout1", type="timeout", toxicity=0, attributes={"timeout": 0})
    with connect(made["listen"]) as sock:
        assert roundtrip(sock, b"*") == b"*"
        api.ok("PATCH", "/proxies/tox/toxics/timeout1", {"toxicity": 1, "attributes": {"timeout": 100}})
        sock.sendall(b"*")
        assert read_until_closed(sock) == (b"", "fin")


def test_toxics_come_and_go_on_a_persistent_connection(api: Api, echo: str) -> None:
    """TestPersistentConnections, TestToxicAddRemove: adding and removing toxics on a live
    connection loses no data and keeps the connection."""
    made = api.proxy(echo, "pc")
    with connect(made["listen"]) as sock:
        for i in range(5):
            api.toxic("pc", name=f"l{i}", type="latency", stream=("upstream", "downstream")[i % 2],
                      attributes={"latency": 5})
            assert roundtrip(sock, b"ping%d" % i) == b"ping%d" % i
        for i in (2, 0, 4, 1, 3):
            api.call("DELETE", f"/proxies/pc/toxics/l{i}")
            assert roundtrip(sock, b"pong%d" % i) == b"pong%d" % i
        assert api.ok("GET", "/proxies/pc/toxics") == []
