"""A run that dies leaves nothing behind: its Ryuk removes its containers and networks within
seconds of ``kill -9``; what a run left without a reaper goes at the next start; live runs keep theirs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import docker
import pytest

from harness import images, reaper
from harness.timeouts import scaled

pytestmark = pytest.mark.scenario

#: A process that uses testcontainers as the harness does (its own Ryuk starts with its first
#: container), plus a raw-SDK helper in the container's network namespace like an impairment.
OWNER = textwrap.dedent("""
    import sys, time
    import docker
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.labels import SESSION_ID
    from testcontainers.core.network import Network
    from harness import reaper

    reaper.configure_testcontainers()
    labels = reaper.labels(**{"harness.test": "ryuk"})
    net = Network(docker_network_kw={"labels": labels}).create()
    box = (DockerContainer(sys.argv[1]).with_command(["idle"]).with_network(net)
           .with_kwargs(labels=labels, init=True).start())
    target = box.get_wrapped_container()
    helper = docker.from_env().containers.run(
        sys.argv[1], entrypoint=["sleep", "600"], network_mode=f"container:{target.id}", detach=True,
        labels=reaper.sdk_labels(**{"harness.test": "ryuk"}))
    print(SESSION_ID, net.name, target.id, helper.id, flush=True)
    time.sleep(600)
""")


def test_ryuk_removes_a_killed_processs_containers_and_networks() -> None:
    client = docker.from_env()
    tags = images.ensure_images(["cf", "ryuk"])
    env = {**os.environ, "RYUK_CONTAINER_IMAGE": tags["ryuk"]}
    env.pop("TESTCONTAINERS_RYUK_DISABLED", None)
    owner = subprocess.Popen([sys.executable, "-c", OWNER, tags["cf"]], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline().split()
        assert len(line) == 4, f"the owner process failed to bring up its resources (exit {owner.poll()})"
        session, network, *containers = line
        ryuk = client.containers.get(f"testcontainers-ryuk-{session}")
        assert ryuk.image.tags == [tags["ryuk"]]
        assert {c.id for c in client.containers.list(filters={"label": f"harness.owner={reaper.owner_token(owner.pid)}"})} \
            == set(containers)
        assert client.networks.list(names=[network])
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    assert_gone(client, containers, network, reapers=(ryuk.id,))


def assert_gone(client: docker.DockerClient, containers: list[str], network: str,
                reapers: tuple[str, ...] = ()) -> None:
    """Within 30 s of the kill -9 just done, the owner's containers, network (and ``reapers``) are gone."""
    killed = time.monotonic()

    def left() -> list[str]:
        # The low-level list: docker-py's containers.list() inspects each hit and raises 404 when the
        # reaper removes one between the list and the inspect.
        return ([f"container {c['Id'][:12]}" for c in client.api.containers(all=True, filters={"id": containers})
                 if c["Id"] in containers]
                + [f"network {n['Name']}" for n in client.api.networks(names=[network])]
                + ([f"reaper {c['Id'][:12]}" for c in client.api.containers(all=True, filters={"id": list(reapers)})]
                   if reapers else []))

    while (remaining := left()) and time.monotonic() - killed < scaled(30):
        time.sleep(0.5)
    assert not remaining, f"{time.monotonic() - killed:.0f} s after kill -9, still there: {remaining}"


#: An xdist controller's part: start the run's reaper, tell where it listens, live on.
CONTROLLER = textwrap.dedent("""
    import time
    from harness import reaper

    reaper.configure_testcontainers()
    reaper.ensure_reaper()
    print(reaper.shared_address(), flush=True)
    time.sleep(600)
""")


def test_workers_register_with_the_controllers_reaper_and_start_none_of_their_own() -> None:
    """One Ryuk per run (``harness.reaper.join_shared``): a worker that joined the controller's
    reaper starts no reaper container, and once worker and controller are both killed the
    controller's reaper removes the worker's container and network too."""
    client = docker.from_env()
    tags = images.ensure_images(["cf", "ryuk"])
    env = {**os.environ, "RYUK_CONTAINER_IMAGE": tags["ryuk"]}
    env.pop("TESTCONTAINERS_RYUK_DISABLED", None)
    procs = [subprocess.Popen([sys.executable, "-c", CONTROLLER], stdout=subprocess.PIPE, text=True, env=env)]
    try:
        assert procs[0].stdout is not None
        address = procs[0].stdout.readline().strip()
        assert ":" in address, f"the controller gave no reaper address (exit {procs[0].poll()})"
        joined = OWNER.replace("reaper.configure_testcontainers()",
                               f"reaper.configure_testcontainers(); reaper.join_shared({address!r}, {tags['ryuk']!r})")
        procs.append(subprocess.Popen([sys.executable, "-c", joined, tags["cf"]], stdout=subprocess.PIPE, text=True,
                                      env=env))
        assert procs[1].stdout is not None
        line = procs[1].stdout.readline().split()
        assert len(line) == 4, f"the worker failed to bring up its resources (exit {procs[1].poll()})"
        session, network, *containers = line
        assert not client.api.containers(all=True, filters={"name": f"testcontainers-ryuk-{session}"})
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert_gone(client, containers, network)


def test_reaper_removes_resources_of_a_dead_owner_only() -> None:
    client = docker.from_env()
    image = images.ensure_images(["cf"])["cf"]
    victim = subprocess.Popen(["sleep", "60"])
    dead_labels = {reaper.LABEL: "1", reaper.OWNER_LABEL: reaper.owner_token(victim.pid), "harness.test": "reaper"}
    live_labels = {**reaper.labels(), "harness.test": "reaper"}
    made = []
    try:
        dead_net = client.networks.create("hx-reaper-dead", labels=dead_labels)
        dead = client.containers.run(image, ["idle"], detach=True, labels=dead_labels, network=dead_net.name)
        live = client.containers.run(image, ["idle"], detach=True, labels=live_labels)
        made = [dead, live]
        victim.kill()
        victim.wait()
        reaped = reaper.reap(client)
        assert dead.name in reaped.containers and "hx-reaper-dead" in reaped.networks
        assert live.name not in reaped.containers
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(dead.id)
        assert client.containers.get(live.id).status == "running"
    finally:
        victim.kill()
        for container in made:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
        for net in client.networks.list(names=["hx-reaper-dead"]):
            net.remove()


def test_owner_token_tells_a_reused_pid_apart() -> None:
    host, pid, start = reaper.owner_token().rsplit(":", 2)
    assert reaper.owner_alive(f"{host}:{pid}:{start}")
    assert not reaper.owner_alive(f"{host}:{pid}:{int(start) + 1}")
    assert reaper.owner_alive(f"another-host:{pid}:{start}")
