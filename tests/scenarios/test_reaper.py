"""Leftovers of a dead run (Ctrl-C, a killed worker) are removed at the next start; live runs are not."""

from __future__ import annotations

import subprocess

import docker
import pytest

from harness import images, reaper

pytestmark = pytest.mark.scenario


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
