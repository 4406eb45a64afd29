"""The Docker engine as the harness's containers and networks reach it: the API version asked once.

docker-py's clients default to ``version="auto"``: each one asks ``GET /version`` when it is built,
and testcontainers builds a client for every ``DockerContainer`` and ``Network``. To answer, the
engine runs ``runc --version`` and ``docker-init --version`` (moby's ``SystemVersion`` lists their
versions); ~7 ms of machine CPU a call on 2 cores (``ci/bench.py`` prints it), and a matrix run builds
~350 of them. Asked once per process here, then named to every client; the version is the engine's
own, so a remote engine (``DOCKER_HOST``) is asked as before.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import docker
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network


@functools.cache
def api_version() -> str:
    """The API version this process's engine speaks (one ``GET /version``)."""
    return str(docker.from_env().api.api_version)


def docker_time(rfc3339: str) -> float:
    """Epoch seconds of Docker's RFC 3339 time with nanoseconds (``2026-11-29T20:00:04.123456789Z``:
    Python reads microseconds at most)."""
    return datetime.fromisoformat(rfc3339[:26].rstrip("Z") + "+00:00").timestamp()


def client_kw() -> dict[str, Any]:
    """What a docker-py or testcontainers client is built with: the version, so it asks no more."""
    return {"version": api_version()}


def container(image: str) -> DockerContainer:
    """A testcontainers container whose client does not ask the engine's version again."""
    return DockerContainer(image, docker_client_kw=client_kw())


def network(**network_kw: Any) -> Network:
    """A testcontainers network, likewise."""
    return Network(docker_client_kw=client_kw(), docker_network_kw=network_kw)


def client() -> docker.DockerClient:
    """A docker-py client, likewise."""
    return docker.from_env(**client_kw())
