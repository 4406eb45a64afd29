"""Kernel-level impairments inside a node's network namespace, reverted on exit.

Pumba's pattern: a short-lived helper container with NET_ADMIN joins the target's namespace
(``network_mode=container:<id>``) and runs iptables / tc there. What this machine's kernel lacks
(``sch_netem``: delay, jitter, reorder) is detected and reported as ``KernelFeatureMissing`` so a
scenario can skip exactly those cases, naming the feature.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import docker

from harness.deployment import Deployment
from harness.errors import HarnessError


class KernelFeatureMissing(HarnessError):
    def __init__(self, feature: str, detail: str) -> None:
        super().__init__(feature, detail)
        self.feature, self.detail = feature, detail

    def __str__(self) -> str:
        return f"kernel lacks {self.feature}: {self.detail.strip()}"


class Impairments:
    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment
        self.client = docker.from_env()

    def run(self, node: str, script: str) -> tuple[int, str]:
        """Run ``sh -c script`` in ``node``'s network namespace with NET_ADMIN."""
        target = self.dep.nodes[node].docker
        helper = self.client.containers.run(
            self.dep.tags["cf"], entrypoint=["sh", "-c", script], network_mode=f"container:{target.id}",
            cap_add=["NET_ADMIN"], detach=True, labels=self.dep.labels())
        try:
            code = helper.wait(timeout=30)["StatusCode"]
            return code, helper.logs().decode(errors="replace")
        finally:
            helper.remove(force=True)

    def _must(self, node: str, script: str) -> None:
        code, out = self.run(node, script)
        if code != 0:
            raise HarnessError(f"impairment on {node} failed ({script}): {out}")

    @contextlib.contextmanager
    def _rules(self, node: str, rules: list[str]) -> Iterator[None]:
        self._must(node, "; ".join(f"iptables -I {r}" for r in rules) + "; true")
        try:
            yield
        finally:
            self.run(node, "; ".join(f"iptables -D {r}" for r in rules))

    def loss(self, node: str, port: int, probability: float) -> contextlib.AbstractContextManager[None]:
        """Drop this share of packets arriving from ``port`` (the statistic match, random mode)."""
        return self._rules(node, [f"INPUT -p tcp --sport {port} -m statistic --mode random "
                                  f"--probability {probability} -j DROP"])

    def blackhole(self, node: str, port: int) -> contextlib.AbstractContextManager[None]:
        """Silently drop everything to and from ``port``: no RST, no ICMP, nothing."""
        return self._rules(node, [f"INPUT -p tcp --sport {port} -j DROP", f"OUTPUT -p tcp --dport {port} -j DROP"])

    def tcp_reset(self, node: str, port: int) -> contextlib.AbstractContextManager[None]:
        """Answer every packet arriving on local ``port`` with a TCP RST."""
        return self._rules(node, [f"INPUT -p tcp --dport {port} -j REJECT --reject-with tcp-reset"])

    @contextlib.contextmanager
    def bandwidth(self, node: str, kbit: int, device: str = "eth0") -> Iterator[None]:
        """Cap egress of ``device`` with a token bucket (tbf)."""
        self._must(node, f"tc qdisc add dev {device} root tbf rate {kbit}kbit burst 16kb latency 2s")
        try:
            yield
        finally:
            self.run(node, f"tc qdisc del dev {device} root")

    @contextlib.contextmanager
    def delay(self, node: str, ms: int, jitter_ms: int = 0, device: str = "eth0") -> Iterator[None]:
        """netem delay; raises KernelFeatureMissing where the kernel has no sch_netem."""
        code, out = self.run(node, f"tc qdisc add dev {device} root netem delay {ms}ms {jitter_ms}ms")
        if code != 0:
            raise KernelFeatureMissing("sch_netem (CONFIG_NET_SCH_NETEM)", out)
        try:
            yield
        finally:
            self.run(node, f"tc qdisc del dev {device} root")

    @contextlib.contextmanager
    def pause(self, node: str) -> Iterator[None]:
        """Freeze every process of the node (cgroup freezer): its sockets stop, the kernel still ACKs."""
        container = self.dep.nodes[node].docker
        container.pause()
        try:
            yield
        finally:
            container.unpause()

    def partition(self, node: str) -> contextlib.AbstractContextManager[None]:
        """Cut the node off from every network (all traffic but loopback dropped, both ways).

        Done with iptables rather than ``docker network disconnect``: reconnecting would give the
        node a new address, and LBs that resolved it at start would keep dialling the old one.
        """
        return self._rules(node, ["INPUT ! -i lo -j DROP", "OUTPUT ! -o lo -j DROP"])


_NETEM: list[str | None] = []


def netem_missing(deployment: Deployment) -> str | None:
    """Why netem cases cannot run here, or None. Probed once per process, on the client's loopback."""
    if not _NETEM:
        code, out = Impairments(deployment).run("client", "tc qdisc add dev lo root netem delay 1ms && "
                                                          "tc qdisc del dev lo root")
        _NETEM.append(None if code == 0 else f"kernel lacks sch_netem (CONFIG_NET_SCH_NETEM): {out.strip()}")
    return _NETEM[0]
