"""Shared by the in-process fault-proxy tests: an event loop running in its own thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator


def loop_in_a_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """A loop on a daemon thread for servers under test; afterwards every task left is cancelled
    and the loop stopped."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop

    async def cancel_the_rest() -> None:
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(cancel_the_rest(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
