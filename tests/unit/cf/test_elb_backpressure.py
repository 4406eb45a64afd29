"""The ELB-like LB (``harness.cf.elb``) on a TCP listener, on loopback without Docker: it has bounded
buffers (it stops reading the backend while the client takes nothing) and, like an AWS Classic ELB,
closes both sides once no data moved for its idle timeout, even with bytes still queued for a
client whose window is shut ("If no data has been sent or received by the time that the idle
timeout period elapses, the load balancer closes the connection":
docs.aws.amazon.com/elasticloadbalancing/latest/classic/config-idle-timeout.html).
"""

from __future__ import annotations

import asyncio
import socket

from harness.cf.elb import ElbLike, ListenerConfig

CHUNK = 64 * 1024
#: What the backend may push before it is stalled: the kernel buffers on the way (the backend's send
#: buffer, up to net.ipv4.tcp_wmem's 4 MB, the ELB's receive buffer, up to tcp_rmem's max: 32 MB on
#: the CI host, its send buffer) and the stand-in's own (asyncio: 64 KiB write high-water mark,
#: 128 KiB read buffer). A proxy that read everything would take all of FLOOD.
BOUND = 48 * 1024 * 1024
FLOOD = 160 * 1024 * 1024
#: The ELB's idle timeout: longer than the backend needs to notice its stall (1 s without progress).
IDLE_S = 3.0


async def _scenario() -> tuple[int, bool, bool]:
    """Backend floods, client never reads: (bytes the backend got rid of, ELB's handler finished,
    backend's connection ended)."""
    sent, backend_ended = 0, asyncio.Event()
    stalled = asyncio.Event()

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        try:
            while sent < FLOOD:
                writer.write(b"x" * CHUNK)
                try:
                    await asyncio.wait_for(writer.drain(), 1.0)
                except (TimeoutError, asyncio.TimeoutError):
                    stalled.set()
                    break
                sent += CHUNK
            stalled.set()
            await reader.read()  # the ELB's FIN or reset ends this side
        except (ConnectionError, OSError):
            pass
        backend_ended.set()

    upstream = await asyncio.start_server(backend, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    elb = ElbLike(["127.0.0.1"], IDLE_S, None)
    listener = ListenerConfig(0, "tcp", False, False, port)
    handled: list[asyncio.Task[None]] = []

    async def front(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        handled.append(asyncio.current_task())  # type: ignore[arg-type]
        await elb.tcp(listener, r, w)

    server = await asyncio.start_server(front, "127.0.0.1", 0)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a consumer that takes nothing
    client.setblocking(False)
    await asyncio.get_running_loop().sock_connect(client, server.sockets[0].getsockname())
    try:
        await asyncio.wait_for(stalled.wait(), 60)
        # the ELB's idle timer runs from the last byte it moved; then both sides are closed
        await asyncio.wait_for(backend_ended.wait(), IDLE_S + 10)
        await asyncio.wait_for(asyncio.gather(*handled), 10)
        return sent, all(t.done() for t in handled), backend_ended.is_set()
    finally:
        client.close()
        server.close()
        upstream.close()


def test_elb_stops_reading_a_backend_its_client_does_not_drain_and_closes_both_sides_when_idle() -> None:
    sent, handler_done, backend_ended = asyncio.run(_scenario())
    assert sent < BOUND, f"the ELB took {sent} bytes from the backend for a client that reads nothing"
    assert handler_done and backend_ended
