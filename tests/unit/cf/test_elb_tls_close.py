"""The ELB-like LB on a TLS (SSL) TCP listener passes the backend's close to the client at once, on
loopback with a trustme certificate: asyncio's TLS transport cannot half-close, and a client that
never saw the close waited for the LB's idle timeout (a WebSocket client: its 10 s close timeout)."""

from __future__ import annotations

import asyncio
import ssl
import tempfile
import time

import trustme

from harness.cf.elb import ElbLike, ListenerConfig

#: Far longer than the close may take: a client still connected by then was never told.
IDLE_S = 20.0


async def _seconds_to_eof() -> tuple[bytes, float]:
    """The backend sends ``bye`` and closes; what the TLS client read, and how long until its EOF."""

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        await writer.drain()
        writer.close()

    ca = trustme.CA()
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as pem:
        ca.issue_cert("lb.example.com").private_key_and_cert_chain_pem.write_to_path(pem.name)
        upstream = await asyncio.start_server(backend, "127.0.0.1", 0)
        elb = ElbLike(["127.0.0.1"], IDLE_S, pem.name)
        listener = ListenerConfig(0, "tcp", True, False, upstream.sockets[0].getsockname()[1])
        front = await asyncio.start_server(lambda r, w: elb.tcp(listener, r, w), "127.0.0.1", 0, ssl=elb.context())
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    reader, writer = await asyncio.open_connection("127.0.0.1", front.sockets[0].getsockname()[1], ssl=client_ctx,
                                                   server_hostname="lb.example.com")
    started = time.monotonic()
    try:
        got = await asyncio.wait_for(reader.read(), IDLE_S + 5)  # to EOF
    finally:
        writer.close()
        front.close()
        upstream.close()
    return got, time.monotonic() - started


def test_the_backend_s_close_reaches_a_tls_client_without_waiting_for_the_idle_timeout() -> None:
    got, seconds = asyncio.run(_seconds_to_eof())
    assert got == b"bye"
    # the bound is the idle timeout's half, not a guess at how fast a loaded machine is
    assert seconds < IDLE_S / 2, f"the client saw the close after {seconds:.1f} s (the idle timeout is {IDLE_S:g} s)"
