"""ELB-like load balancer: what an AWS Classic ELB does with WebSockets on each listener type.

HTTP listener: parses each request, treats ``Upgrade``/``Connection`` as hop-by-hop and drops them
(Classic ELB's HTTP/HTTPS listeners do not support WebSockets), appends X-Forwarded-For and sets
X-Forwarded-Proto/-Port, and relays the backend's answer: the handshake reaches the router as a
plain GET and the client gets the Traffic Controller's 400. TCP listener: passes bytes, optionally
after a PROXY v1 header (Classic ELB's Proxy Protocol policy). Both close a connection on which no
data moved for ``idle_timeout`` seconds (Classic ELB default: 60; "If no data has been sent or
received by the time that the idle timeout period elapses, the load balancer closes the connection",
docs.aws.amazon.com/elasticloadbalancing/latest/classic/config-idle-timeout.html), also when bytes
are still queued for a client that reads nothing; buffers are bounded: a side is read only while the
other drains (``harness.cf.streams.splice``; tests/unit/cf/test_elb_backpressure.py).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import ssl
from dataclasses import dataclass

import h11

from harness.cf.settings import env_json, log_event
from harness.cf.streams import parse_request, raw_headers, read_head, render_head, splice
from harness.protocol import headers as hdr
from harness.protocol.proxy_protocol import encode_v1


@dataclass(frozen=True)
class ListenerConfig:
    port: int
    protocol: str  # http | tcp
    tls: bool
    proxy_protocol: bool
    backend_port: int


class ElbLike:
    def __init__(self, backends: list[str], idle_timeout: float, certfile: str | None) -> None:
        self.backends = itertools.cycle(backends)  # router hosts, round robin
        self.idle_timeout = idle_timeout
        self.certfile = certfile

    async def _dial(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(asyncio.open_connection(next(self.backends), port), 5)

    async def tcp(self, listener: ListenerConfig, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer, local = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        try:
            up = await self._dial(listener.backend_port)
        except (OSError, TimeoutError):
            writer.close()
            return
        if listener.proxy_protocol:
            up[1].write(encode_v1(peer[0], peer[1], local[0], local[1]))
        reason = await splice((reader, writer), up, idle_timeout=self.idle_timeout)
        log_event("elb", "tcp_closed", listener=listener.port, peer=peer[0], reason=reason)

    async def http(self, listener: ListenerConfig, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[0]
        try:
            head, rest = await asyncio.wait_for(read_head(reader), self.idle_timeout)
            request = parse_request(head)
        except (EOFError, TimeoutError, h11.RemoteProtocolError, ValueError, OSError):
            writer.close()
            return
        received = raw_headers(request)
        outgoing = hdr.elb_request(received, client_ip=peer, proto="https" if listener.tls else "http",
                                   port=listener.port)
        outgoing = hdr.replace(outgoing, "Connection", "close")  # one request per backend connection
        log_event("elb", "http_request", listener=listener.port, path=request.target.decode("latin-1"),
                  upgrade_requested=hdr.is_upgrade(received), forwarded_upgrade=hdr.is_upgrade(outgoing))
        try:
            up = await self._dial(listener.backend_port)
        except (OSError, TimeoutError):
            writer.write(b"HTTP/1.1 503 Service Unavailable: Back-end server is at capacity\r\n"
                         b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        line = f"{request.method.decode()} {request.target.decode('latin-1')} HTTP/1.1"
        up[1].write(render_head(line, outgoing) + rest)
        await up[1].drain()
        await splice((reader, writer), up, idle_timeout=self.idle_timeout)

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.certfile)  # type: ignore[arg-type]
        return ctx


async def main() -> None:
    config = env_json("LB_CONFIG", {})
    assert isinstance(config, dict)
    certfile = None
    if pem := os.environ.get("LB_TLS_PEM"):
        certfile = "/tmp/lb.pem"
        with open(certfile, "w") as fh:
            fh.write(pem)
    elb = ElbLike(config["backends"], float(config.get("idle_timeout", 60)), certfile)
    servers = []
    for raw in config["listeners"]:
        listener = ListenerConfig(raw["port"], raw["protocol"], raw.get("tls", False), raw.get("proxy_protocol", False),
                                  raw.get("backend_port", 80))
        handler = elb.http if listener.protocol == "http" else elb.tcp

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter, _l: ListenerConfig = listener,
                         _h=handler) -> None:  # type: ignore[no-untyped-def]
            await _h(_l, r, w)

        servers.append(await asyncio.start_server(handle, "0.0.0.0", listener.port,
                                                  ssl=elb.context() if listener.tls else None))
    log_event("elb", "listening", listeners=config["listeners"], idle_timeout=elb.idle_timeout)
    await asyncio.gather(*(s.serve_forever() for s in servers))
