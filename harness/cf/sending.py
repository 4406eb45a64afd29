"""Writing envelopes onto a WebSocket: one binary message each, flushed together.

Shared by the emitter (app -> Doppler), Doppler (-> TC) and the TC (-> client). Its own small module
so that the emitter, which the app node's agent forks for every ``emit``, does not import the whole
Traffic Controller (~20 ms of CPU per emit on this machine, most of an emit's cost).
"""

from __future__ import annotations

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection


async def send_frames(ws: ServerConnection | ClientConnection, messages: list[bytes]) -> None:
    """One binary message per envelope (what noaa reads), written to the socket together: websockets'
    ``send_context`` (documented for user code) frames each and flushes once, with flow control."""
    async with ws.send_context():
        for message in messages:
            ws.protocol.send_binary(message)
