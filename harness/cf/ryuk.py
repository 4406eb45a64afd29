"""A Ryuk-compatible reaper (testcontainers/moby-ryuk), which testcontainers starts itself through
``RYUK_CONTAINER_IMAGE`` because the real image cannot be pulled here (image ``images/ryuk``).

The protocol, as testcontainers-python's ``Reaper`` speaks it: the client connects to port 8080 and
sends filter lines such as ``label=org.testcontainers.session-id=<uuid>\\r\\n``; a line is a URL
query (``label=a=1&label=b=2``: every filter of one line must match, as in Docker's own filters),
and each line is answered ``ACK\\n``. While any client is connected nothing happens. Once none has
been connected for ``RYUK_RECONNECTION_TIMEOUT`` (a Go duration, default ``10s``), every container
and then every network that matches any line received is removed, and the process exits. Nobody
connecting within ``RYUK_CONNECTION_TIMEOUT`` (default ``60s``) ends it the same way.

The client never reconnects (testcontainers-python holds one socket per process), so the countdown
starts when the process that started the reaper is gone: exited, killed or crashed.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol
from urllib.parse import parse_qsl

from harness.cf.settings import log_event

PORT = 8080
#: How long network removal is retried while endpoints of removed containers linger.
NETWORK_RETRY_S = 30.0

Filters = dict[str, list[str]]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (``10s``, ``1m30s``, ``500ms``); a bare number is seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 10s, 1m30s, 500ms)")
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def parse_filters(line: str) -> Filters | None:
    """One filter line -> Docker filters (``{"label": ["k=v", ...]}``); None for a blank line."""
    line = line.strip()
    if not line:
        return None
    pairs = parse_qsl(line, keep_blank_values=True, strict_parsing=True)
    filters: Filters = {}
    for key, value in pairs:
        if not key or not value:
            raise ValueError(f"empty filter key or value in {line!r}")
        filters.setdefault(key, []).append(value)
    return filters


@dataclass
class Lifetime:
    """When the reaper prunes: the clock is the caller's, so this is testable without waiting."""

    connection_timeout: float  # no client at all within this long after start: prune and exit
    reconnection_timeout: float  # no client connected for this long after the last one left
    started: float
    clients: int = 0  # connections open now
    last_left: float | None = None  # when the connection count last dropped to zero

    def connected(self) -> None:
        self.clients += 1

    def disconnected(self, now: float) -> None:
        self.clients -= 1
        if self.clients == 0:
            self.last_left = now

    def prune_at(self) -> float | None:
        """When to prune if nothing changes; None while a client is connected."""
        if self.clients:
            return None
        if self.last_left is None:
            return self.started + self.connection_timeout
        return self.last_left + self.reconnection_timeout


def removal_order(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Containers that live in another's network namespace (``network_mode=container:<id>``:
    probes, impairment helpers) go first, so no removal waits on a namespace still in use."""
    return sorted(containers, key=lambda c: not c.get("HostConfig", {}).get("NetworkMode", "").startswith("container:"))


class DockerApi(Protocol):
    """The part of ``docker.APIClient`` the reaper uses."""

    def containers(self, *, all: bool, filters: Filters) -> list[dict[str, Any]]: ...
    def remove_container(self, container: str, *, v: bool, force: bool) -> None: ...
    def networks(self, *, filters: Filters) -> list[dict[str, Any]]: ...
    def remove_network(self, net_id: str) -> None: ...


@dataclass
class Pruned:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<kind> <name>: <error>" left behind


def prune(api: DockerApi, filter_sets: list[Filters], *, network_retry_s: float = NETWORK_RETRY_S,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> Pruned:
    """Remove (force) every container, then every network, matching any of ``filter_sets``."""
    import docker.errors

    done = Pruned()
    containers: dict[str, dict[str, Any]] = {}
    networks: dict[str, dict[str, Any]] = {}
    for filters in filter_sets:
        try:
            containers.update((c["Id"], c) for c in api.containers(all=True, filters=filters))
            networks.update((n["Id"], n) for n in api.networks(filters=filters))
        except docker.errors.APIError as exc:  # a filter Docker does not know: the other lines still count
            done.failed.append(f"filter {filters}: {exc}")
    for c in removal_order(list(containers.values())):
        name = (c.get("Names") or [c["Id"][:12]])[0].lstrip("/")
        try:
            api.remove_container(c["Id"], v=True, force=True)
            done.containers.append(name)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:  # e.g. 409 removal already in progress: the network retry waits
            done.failed.append(f"container {name}: {exc}")
    deadline = clock() + network_retry_s
    while networks:
        for net_id, net in list(networks.items()):
            try:
                api.remove_network(net_id)
                done.networks.append(net["Name"])
                del networks[net_id]
            except docker.errors.NotFound:
                del networks[net_id]
            except docker.errors.APIError as exc:  # active endpoints of containers still going away
                if clock() >= deadline:
                    done.failed.append(f"network {net['Name']}: {exc}")
                    del networks[net_id]
        if networks:
            sleep(0.5)
    return done


class RyukServer:
    """Accepts clients, collects their filter lines, and returns them once it is time to prune."""

    def __init__(self, lifetime: Lifetime) -> None:
        self.lifetime = lifetime
        self.filters: list[Filters] = []  # every distinct filter set received, in arrival order
        self._changed = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        self.lifetime.connected()
        self._changed.set()
        log_event("ryuk", "connected", peer=peer, clients=self.lifetime.clients)
        try:
            while raw := await reader.readline():
                try:
                    filters = parse_filters(raw.decode(errors="replace"))
                except ValueError as exc:
                    writer.write(f"ERROR {exc}\n".encode())
                else:
                    if filters is not None:
                        if filters not in self.filters:
                            self.filters.append(filters)
                            log_event("ryuk", "filter", filters=filters)
                        writer.write(b"ACK\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.lifetime.disconnected(time.monotonic())
            self._changed.set()
            log_event("ryuk", "disconnected", peer=peer, clients=self.lifetime.clients)
            writer.close()

    async def until_prune(self) -> list[Filters]:
        """Wait until no client has been connected for the (re)connection timeout."""
        while True:
            self._changed.clear()
            at = self.lifetime.prune_at()
            if at is None:
                await self._changed.wait()
                continue
            delay = at - time.monotonic()
            if delay <= 0:
                return self.filters
            try:
                await asyncio.wait_for(self._changed.wait(), delay)
            except TimeoutError:
                pass


async def serve(lifetime: Lifetime, host: str = "0.0.0.0", port: int = PORT) -> list[Filters]:
    server = RyukServer(lifetime)
    listener = await asyncio.start_server(server.handle, host, port)
    log_event("ryuk", "listening", port=port, connection_timeout=lifetime.connection_timeout,
              reconnection_timeout=lifetime.reconnection_timeout)
    print("ryuk: Started!", flush=True)  # the line testcontainers' Reaper matches (r".* Started!")
    async with listener:
        return await server.until_prune()


def main() -> None:
    # PID 1 ignores SIGTERM unless it installs a handler: `docker stop` ends the reaper without pruning.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    import docker

    lifetime = Lifetime(connection_timeout=parse_duration(os.environ.get("RYUK_CONNECTION_TIMEOUT", "60s")),
                        reconnection_timeout=parse_duration(os.environ.get("RYUK_RECONNECTION_TIMEOUT", "10s")),
                        started=time.monotonic())
    filters = asyncio.run(serve(lifetime, port=int(os.environ.get("RYUK_PORT", PORT))))
    done = prune(docker.from_env().api, filters) if filters else Pruned()
    log_event("ryuk", "pruned", containers=done.containers, networks=done.networks, failed=done.failed)


if __name__ == "__main__":
    main()
