"""Removes labelled containers and networks left by dead runs (Ctrl-C, a killed xdist worker).

Ryuk cannot be pulled here, so testcontainers runs with ``TESTCONTAINERS_RYUK_DISABLED=true`` and
this reaper runs at the start of every session instead. Every resource the harness creates carries
``harness.owner=<host>:<pid>:<process start time>``; a resource whose owner process is gone (or is
a different process that reused the pid) is removed. Owners on other hosts are left alone.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import docker

LABEL = "harness"
OWNER_LABEL = "harness.owner"


def _start_time(pid: int) -> str | None:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: starttime in clock ticks since boot


def owner_token(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def owner_alive(token: str) -> bool:
    try:
        host, pid, start = token.rsplit(":", 2)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True  # cannot tell: never reap another machine's run
    return _start_time(int(pid)) == start


def labels(**extra: str) -> dict[str, str]:
    return {LABEL: "1", OWNER_LABEL: owner_token(), **extra}


@dataclass
class Reaped:
    containers: list[str]
    networks: list[str]


def reap(client: docker.DockerClient | None = None) -> Reaped:
    client = client or docker.from_env()
    dead = Reaped([], [])
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        if not owner_alive(container.labels.get(OWNER_LABEL, "")):
            container.remove(force=True)
            dead.containers.append(container.name)
    for network in client.networks.list(filters={"label": LABEL}):
        if not owner_alive(network.attrs.get("Labels", {}).get(OWNER_LABEL, "")):
            try:
                network.remove()
                dead.networks.append(network.name)
            except docker.errors.APIError:
                pass  # still has endpoints of a live run
    return dead
