"""Nothing a run creates outlives it: testcontainers' reaper (Ryuk) for runs that die, plus a sweep
of dead owners' leftovers at the start of every session as a second line of defence.

Ryuk's image cannot be pulled here, so the harness builds its own (``images/ryuk``,
``harness/cf/ryuk.py``) and ``ensure_reaper()`` hands it to testcontainers (``RYUK_CONTAINER_IMAGE``)
and starts it. Each process that brings up containers (each xdist worker) then holds one TCP
connection to its own reaper container, which removes every container and network carrying that
process's ``org.testcontainers.session-id`` label once the process has been gone for
``RYUK_RECONNECTION_TIMEOUT`` (10 s): Ctrl-C, SIGTERM and ``kill -9`` alike.

Every resource also carries ``harness.owner=<host>:<pid>:<process start time>``; ``reap()`` removes
those whose owner process is gone (or is a different process that reused the pid), for runs that
died before their reaper was connected or with Ryuk turned off. Owners on other hosts are left alone.
"""

from __future__ import annotations

import atexit
import os
import socket
from dataclasses import dataclass

import docker
from testcontainers.core.config import ENABLE_FLAGS
from testcontainers.core.config import testcontainers_config as tc_config
from testcontainers.core.labels import LABEL_SESSION_ID, SESSION_ID

from harness.errors import HarnessError

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
    """Labels of everything the harness creates *through testcontainers*, which adds the session
    label itself (and refuses ``org.testcontainers.*`` keys from callers)."""
    return {LABEL: "1", OWNER_LABEL: owner_token(), **extra}


def session_label() -> dict[str, str]:
    """testcontainers' session label, the one this process's Ryuk removes by. Resources made with
    the raw Docker SDK must add it to ``labels()``; testcontainers adds it on its own."""
    return {LABEL_SESSION_ID: SESSION_ID}


def sdk_labels(**extra: str) -> dict[str, str]:
    """``labels()`` plus the session label: for containers and networks made without testcontainers."""
    return {**labels(**extra), **session_label()}


# ---- testcontainers' reaper: the harness's Ryuk image ---------------------------------------------


def _opted_out() -> bool:
    return os.environ.get("TESTCONTAINERS_RYUK_DISABLED", "").lower() in ENABLE_FLAGS


def configure_testcontainers() -> None:
    """Set testcontainers' reaper up without touching Docker (the plugin calls this on import).

    ``RYUK_CONTAINER_IMAGE`` set (a real ``testcontainers/ryuk`` where a registry answers, or the
    harness's image handed down by a parent process): testcontainers starts that reaper with its
    first container. Otherwise the reaper stays off until ``ensure_reaper()`` has built the
    harness's image, so nothing tries to pull ``testcontainers/ryuk``.
    ``TESTCONTAINERS_RYUK_DISABLED=true`` turns every reaper off; ``reap()`` is then all there is.
    """
    if _opted_out():
        tc_config.ryuk_disabled = True
    elif image := os.environ.get("RYUK_CONTAINER_IMAGE"):
        tc_config.ryuk_image = image  # testcontainers read the variable at import, maybe before it was set
        tc_config.ryuk_disabled = False
    else:
        tc_config.ryuk_disabled = True


def ensure_reaper() -> str | None:
    """Build the reaper image if needed and start this process's reaper now; returns the image
    (None when turned off). Idempotent; Deployment.start calls it before creating anything.

    Started here rather than lazily by testcontainers because networks are created before the
    first container and testcontainers starts its reaper only with a container. testcontainers
    also registers an ``atexit`` hook that removes the reaper container at a normal exit; that is
    undone, so the reaper also sweeps whatever an interrupted teardown (a second Ctrl-C) left.
    """
    if _opted_out():
        return None
    if _shared is not None:  # registered with the controller's reaper (join_shared)
        return tc_config.ryuk_image
    from testcontainers.core.container import Reaper

    image = os.environ.get("RYUK_CONTAINER_IMAGE")
    if not image:
        from harness import images

        image = images.ensure_images(["ryuk"])["ryuk"]
        os.environ["RYUK_CONTAINER_IMAGE"] = image  # child processes start the same reaper image
    tc_config.ryuk_image = image
    tc_config.ryuk_disabled = False
    try:
        Reaper.get_instance()
    except Exception as exc:
        raise HarnessError(f"the reaper container ({image}) did not start or answer: {exc}; set "
                           "TESTCONTAINERS_RYUK_DISABLED=true to run without it (leftovers are then "
                           "removed at the next run's start)") from exc
    atexit.unregister(Reaper.delete_instance)
    return image


#: xdist's ``workerinput`` key for the address of the controller's reaper: each worker registers its
#: session label there instead of starting a Ryuk container of its own (one per run, not one per
#: worker: twelve fewer container starts at the busiest moment of a run).
SHARED_KEY = "harness_ryuk"
_shared: socket.socket | None = None  # this process's connection to a reaper another process started


def shared_address() -> str | None:
    """``host:port`` of the reaper this process started (``ensure_reaper``), for its workers
    (``join_shared``, with the image it runs)."""
    from testcontainers.core.container import Reaper

    if _shared is not None or Reaper._container is None:
        return None
    return f"{Reaper._container.get_container_host_ip()}:{Reaper._container.get_exposed_port(8080)}"


def join_shared(address: str, image: str) -> None:
    """Have the reaper at ``address`` (started by the xdist controller) remove this process's
    resources too, as testcontainers' own connection would: send this session's label filter,
    wait for Ryuk's ACK, keep the connection open for the life of the process. Ryuk prunes once
    every connection has been gone for its reconnection timeout, so a worker's leftovers go
    when the run ends, whichever process dies first. testcontainers then starts no reaper here."""
    global _shared
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    try:
        sock.sendall(f"label={LABEL_SESSION_ID}={SESSION_ID}\n".encode())
        if not sock.recv(16).startswith(b"ACK"):
            raise HarnessError(f"the run's reaper at {address} did not acknowledge this worker's label filter")
    except (OSError, HarnessError):
        sock.close()
        raise
    sock.settimeout(None)
    _shared = sock
    os.environ["RYUK_CONTAINER_IMAGE"] = image  # what a process this one starts would use
    tc_config.ryuk_image, tc_config.ryuk_disabled = image, True


@dataclass
class Reaped:
    containers: list[str]
    networks: list[str]


def reap(client: docker.DockerClient | None = None) -> Reaped:
    client = client or docker.from_env()
    dead = Reaped([], [])
    # ignore_removed: docker-py inspects each listed container, and another run's containers come and
    # go meanwhile (seen: a 404 from a cell torn down between the list and the inspect)
    for container in client.containers.list(all=True, filters={"label": LABEL}, ignore_removed=True):
        if not owner_alive(container.labels.get(OWNER_LABEL, "")):
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass  # another run's reaper (or Ryuk) removed it first: gone all the same
            dead.containers.append(container.name)
    for network in client.networks.list(filters={"label": LABEL}):
        if not owner_alive(network.attrs.get("Labels", {}).get(OWNER_LABEL, "")):
            try:
                network.remove()
                dead.networks.append(network.name)
            except docker.errors.NotFound:
                dead.networks.append(network.name)  # removed meanwhile by another reaper
            except docker.errors.APIError:
                pass  # still has endpoints of a live run
    return dead
