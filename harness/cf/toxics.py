"""Toxiproxy 2.12's toxics and the chunk pipeline they run in, ported to asyncio.

Each direction of a proxied connection is a chain of stubs joined by channels (Shopify/toxiproxy
``link.go``, ``toxics/toxic.go``): the link's reader puts timestamped chunks into the first
channel, each stub runs one toxic's ``pipe`` from its input channel to its output, and the link's
writer copies the last channel to the socket. A closed channel (``None``) is end of stream, so a
direction drains through all its toxics before its socket closes. Toxics are *interrupted* (not
cancelled) when the chain changes: an interrupted toxic hands on any chunk it holds, returns, and
the stub is run again later, which re-rolls its toxicity (``ToxicStub.Run``). Each toxic here
mirrors ``toxics/<type>.go`` of v2.12.0 line for line where behaviour is concerned.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class Chunk:
    """Bytes read from one socket read, stamped with when they were read (``stream.StreamChunk``)."""

    data: bytes
    ts: float = field(default_factory=time.monotonic)


class Interrupted(Exception):
    """The chain is being changed: the running toxic must hand on what it holds and return."""


class Chan:
    """A Go channel of chunks: ``size`` 0 is a rendezvous (put returns once the chunk was taken);
    ``close`` never blocks, and ``get`` returns None once closed and drained."""

    def __init__(self, size: int = 0) -> None:
        self.size = size
        self.items: deque[Chunk] = deque()
        self.closed = False
        self.taken = 0  # chunks handed out so far
        self.put_count = 0
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self) -> None:
        await self._changed.wait()

    async def put(self, chunk: Chunk) -> None:
        while len(self.items) >= max(self.size, 1):
            await self._wait()
        self.items.append(chunk)
        self.put_count += 1
        mine = self.put_count
        self._notify()
        while self.size == 0 and self.taken < mine and not self.closed:
            await self._wait()

    async def get(self, stub: Stub | None = None) -> Chunk | None:
        while not self.items:
            if self.closed:
                return None
            if stub is not None and stub.interrupt_requested:
                raise Interrupted
            await self._wait()
        if stub is not None and stub.interrupt_requested:
            raise Interrupted
        return self.pop()

    def pop(self) -> Chunk:
        chunk = self.items.popleft()
        self.taken += 1
        self._notify()
        return chunk

    def close(self) -> None:
        self.closed = True
        self._notify()

    def wake(self) -> None:
        self._notify()


class Stub:
    """One toxic's place in a chain (``ToxicStub``): its channels, its state, its running task."""

    def __init__(self, input: Chan, output: Chan) -> None:
        self.input, self.output = input, output
        self.state: Any = None
        self.closed = False
        self.interrupt_requested = False
        self.task: asyncio.Task[None] | None = None
        self._interrupt = asyncio.Event()

    def run(self, toxic: ToxicWrapper) -> None:
        """Start the toxic, or a noop when this run's roll misses its toxicity (rolled per run)."""
        pipe = toxic.toxic.pipe if random.random() < toxic.toxicity else Noop().pipe
        self.task = asyncio.get_running_loop().create_task(self._run(pipe))

    async def _run(self, pipe: Callable[[Stub], Any]) -> None:
        try:
            await pipe(self)
        except Interrupted:
            pass

    async def recv(self) -> Chunk | None:
        return await self.input.get(self)

    async def sleep(self, seconds: float) -> None:
        """Sleep, or raise Interrupted as soon as an interrupt arrives."""
        if self.interrupt_requested:
            raise Interrupted
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._interrupt.wait(), seconds)
        except TimeoutError:
            return
        raise Interrupted

    async def send(self, chunk: Chunk, timeout: float | None = None) -> None:
        """Hand a chunk on (``stub.Output <- c``; with a timeout, ``WriteOutput``: dropped after it)."""
        if timeout is None:
            await self.output.put(chunk)
            return
        try:
            await asyncio.wait_for(self.output.put(chunk), timeout)
        except TimeoutError:
            pass

    async def interrupt(self) -> bool:
        """Stop the running toxic at its next interruptible point; False if the stub had closed."""
        if self.closed or self.task is None:
            return False
        self.interrupt_requested = True
        self._interrupt.set()
        self.input.wake()
        try:
            await asyncio.shield(self.task)
        finally:
            self.interrupt_requested = False
            self._interrupt = asyncio.Event()
        return not self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.output.close()


class Toxic:
    """A toxic type: its attributes (name -> default, all int64 in Go) and its pipe."""

    type: ClassVar[str]
    attributes: ClassVar[tuple[str, ...]]
    buffer_size: ClassVar[int] = 0

    def __init__(self, **attrs: int) -> None:
        for name in self.attributes:
            setattr(self, name, attrs.get(name, 0))

    def as_json(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.attributes}

    def new_state(self) -> Any:
        return None

    def cleanup(self, stub: Stub) -> None:
        """Called when the toxic is removed from a live chain (only ``timeout`` acts)."""

    async def pipe(self, stub: Stub) -> None:
        raise NotImplementedError


class Noop(Toxic):
    type, attributes = "noop", ()

    async def pipe(self, stub: Stub) -> None:
        while (c := await stub.recv()) is not None:
            await stub.send(c)
        stub.close()


class Latency(Toxic):
    """Each chunk leaves ``latency`` ± ``jitter`` ms after it was *read*, so chunks queued behind
    one another (up to 1024 buffered) are not delayed twice (``toxics/latency.go``)."""

    type, attributes, buffer_size = "latency", ("latency", "jitter"), 1024
    latency: int
    jitter: int

    def delay(self) -> float:
        delay = self.latency
        if self.jitter > 0:
            delay += random.randrange(self.jitter * 2) - self.jitter
        return delay / 1000

    async def pipe(self, stub: Stub) -> None:
        while True:
            c = await stub.recv()
            if c is None:
                stub.close()
                return
            sleep = self.delay() - (time.monotonic() - c.ts)
            try:
                await stub.sleep(sleep)
            except Interrupted:
                await stub.send(c)  # don't drop data on the floor
                raise
            c.ts += sleep
            await stub.send(c)


class Bandwidth(Toxic):
    """``rate`` KB/s: a chunk waits its share of time (owed time carries over); a chunk larger
    than 100 ms' worth leaves in 100 ms slices. Rate 0 never lets a byte through: Go's slicing loop
    then emits empty slices forever (``toxics/bandwidth.go``), and so does this."""

    type, attributes = "bandwidth", ("rate",)
    rate: int

    async def pipe(self, stub: Stub) -> None:
        owed = 0.0
        while True:
            p = await stub.recv()
            if p is None:
                stub.close()
                return
            owed = 0.0 if self.rate <= 0 else owed + len(p.data) / (self.rate * 1000)
            try:
                while len(p.data) > self.rate * 100:
                    await stub.sleep(0.1)
                    step = max(self.rate * 100, 0)
                    await stub.send(Chunk(p.data[:step], p.ts))
                    p = Chunk(p.data[step:], p.ts)
                    owed -= 0.1
                start = time.monotonic()
                await stub.sleep(owed)
                owed -= time.monotonic() - start
            except Interrupted:
                await stub.send(p, timeout=5)
                raise
            await stub.send(p)


class SlowClose(Toxic):
    """Delay the close (end of stream) by ``delay`` ms; data passes untouched."""

    type, attributes = "slow_close", ("delay",)
    delay: int

    async def pipe(self, stub: Stub) -> None:
        while True:
            c = await stub.recv()
            if c is None:
                await stub.sleep(self.delay / 1000)
                stub.close()
                return
            await stub.send(c)


class Timeout(Toxic):
    """Swallow every chunk. With ``timeout`` > 0, close the connection once that many ms pass
    without a chunk (the timer restarts on each); with 0, never. Removing the toxic (or /reset)
    closes the connection too (``Cleanup``): the held-up peer never gets its data."""

    type, attributes = "timeout", ("timeout",)
    timeout: int

    async def pipe(self, stub: Stub) -> None:
        while True:
            if self.timeout > 0:
                try:
                    c = await asyncio.wait_for(stub.recv(), self.timeout / 1000)
                except TimeoutError:
                    stub.close()
                    return
            else:
                c = await stub.recv()
            if c is None:
                stub.close()
                return

    def cleanup(self, stub: Stub) -> None:
        stub.close()


class ResetPeer(Toxic):
    """On the first chunk (or end of stream) in its direction: drop it, wait ``timeout`` ms
    (not interruptible, as in Go), close. The close is a RST only if the toxic was in the chain
    when the connection was accepted (the link then set SO_LINGER 0); otherwise it is a FIN."""

    type, attributes = "reset_peer", ("timeout",)
    timeout: int

    async def pipe(self, stub: Stub) -> None:
        await stub.recv()
        await asyncio.sleep(self.timeout / 1000)
        stub.close()


class Slicer(Toxic):
    """Split each chunk by halving around ``average_size`` ± ``size_variation`` and send the
    pieces ``delay`` µs apart (``toxics/slicer.go``)."""

    type, attributes = "slicer", ("average_size", "size_variation", "delay")
    average_size: int
    size_variation: int
    delay: int

    def bounds(self, start: int, end: int) -> list[int]:
        """Go's recursive bisection, as a flat list of (start, end) pairs. Go recurses without end
        when a piece of one byte is still above average + variation (average_size 0); here such a
        piece is kept whole."""
        if (end - start) - self.average_size <= self.size_variation or end - start <= 1:
            return [start, end]
        mid = start + (end - start) // 2
        if self.size_variation > 0:
            mid += random.randrange(self.size_variation * 2) - self.size_variation
        mid = min(max(mid, start + 1), end - 1)
        return self.bounds(start, mid) + self.bounds(mid, end)

    async def pipe(self, stub: Stub) -> None:
        while True:
            c = await stub.recv()
            if c is None:
                stub.close()
                return
            cuts = self.bounds(0, len(c.data))
            for i in range(1, len(cuts), 2):
                await stub.send(Chunk(c.data[cuts[i - 1]:cuts[i]], c.ts))
                try:
                    await stub.sleep(self.delay / 1e6)
                except Interrupted:
                    await stub.send(Chunk(c.data[cuts[i]:], c.ts))
                    raise


@dataclass
class LimitDataState:
    transmitted: int = 0


class LimitData(Toxic):
    """Pass ``bytes`` bytes, cutting the chunk that crosses the budget, then close. The count
    starts when the toxic joins this connection's chain (its state), not at connection start."""

    type, attributes = "limit_data", ("bytes",)
    bytes: int

    def new_state(self) -> LimitDataState:
        return LimitDataState()

    async def pipe(self, stub: Stub) -> None:
        state: LimitDataState = stub.state
        remaining = self.bytes - state.transmitted
        while True:
            c = await stub.recv()
            if c is None:
                stub.close()
                return
            remaining = max(remaining, 0)
            if remaining < len(c.data):
                c = Chunk(c.data[:remaining], c.ts)
            if c.data:
                await stub.send(c)
                state.transmitted += len(c.data)
            remaining = self.bytes - state.transmitted
            if remaining <= 0:
                stub.close()
                return


TOXICS: dict[str, type[Toxic]] = {t.type: t for t in (Noop, Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer,
                                                       LimitData)}


@dataclass(eq=False)
class ToxicWrapper:
    """A toxic as the API knows it (``toxics.ToxicWrapper``); ``index`` is its place in its
    direction's chain, 0 being the hidden noop."""

    name: str
    type: str
    stream: str  # as the client spelled it (parsed case-insensitively)
    direction: str  # "upstream" | "downstream"
    toxicity: float
    toxic: Toxic
    index: int = 0

    @property
    def buffer_size(self) -> int:
        return self.toxic.buffer_size

    def as_json(self) -> dict[str, Any]:
        toxicity = int(self.toxicity) if float(self.toxicity).is_integer() else self.toxicity  # Go prints 1, not 1.0
        return {"attributes": self.toxic.as_json(), "name": self.name, "type": self.type, "stream": self.stream,
                "toxicity": toxicity}


NOOP = ToxicWrapper("", "noop", "", "", 1.0, Noop())
