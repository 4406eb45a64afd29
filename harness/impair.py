"""Kernel-level impairments inside a node's network namespace, verified and reverted on exit.

Pumba's pattern: a short-lived helper container with NET_ADMIN joins the target's namespace
(``network_mode=container:<id>``) and runs iptables / tc there. An impairment is only as good as
the proof that it took effect, so each context manager yields an ``Effect`` the check reads:

- installing must succeed, or ``HarnessError`` carries the helper's output (a missing kernel feature
  is ``KernelFeatureMissing``, naming it, so a case can report it as not applicable);
- iptables rules carry ``-m comment --comment harness-<id>``; the helper run that removes them first
  prints ``iptables-save -c``, so ``Effect.rules`` holds the packet and byte counters of exactly
  those rules (``Effect.matched``: packets the acting rules hit);
- a tc qdisc's statistics (``tc -s -j qdisc show``: bytes, packets, drops, overlimits) are read in
  the run that deletes it (``Effect.qdisc``);
- a pause reads the container's freezer state while it holds, from Docker and, where the host's
  cgroup files are readable, from the kernel (``Effect.freezer``).

One helper run installs, one reads and removes: an impairment costs two short containers.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from harness.deployment import Deployment
from harness.errors import HarnessError
from harness.impair_stats import (
    QdiscStats,
    RuleCounter,
    freezer_file,
    parse_freezer,
    parse_iptables_save,
    parse_tc_qdisc,
)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")
_SAVED = "--- harness: counters read, removing ---"  # splits the removal run's output


class KernelFeatureMissing(HarnessError):
    def __init__(self, feature: str, detail: str) -> None:
        super().__init__(feature, detail)
        self.feature, self.detail = feature, detail

    def __str__(self) -> str:
        return f"kernel lacks {self.feature}: {self.detail.strip().rstrip('.')}"


@dataclass(frozen=True)
class FreezerState:
    """A container's freezer as read at one moment of a pause."""

    at: float
    docker_status: str  # Docker's State.Status: "paused" while frozen
    kernel_frozen: bool | None  # the cgroup's own freezer file; None where the host cannot read it
    source: str  # the file read, or why none was

    @property
    def frozen(self) -> bool:
        return self.docker_status == "paused" and self.kernel_frozen is not False


@dataclass
class Effect:
    """What one impairment did. Counters and qdisc statistics are filled in by the helper run that
    removes the impairment, so read them after the ``with`` block; the freezer while it holds."""

    kind: str  # loss, blackhole, tcp_reset, partition, bandwidth, delay, pause
    node: str
    tag: str  # the iptables comment of this impairment's rules (harness-<id>)
    specs: tuple[str, ...] = ()  # the iptables rules as installed (``CHAIN match... [-j TARGET]``)
    device: str | None = None  # the interface a qdisc sits on
    applied_at: float = 0.0
    removed_at: float | None = None
    rules: tuple[RuleCounter, ...] = ()
    qdisc: QdiscStats | None = None
    freezer: list[FreezerState] = field(default_factory=list)

    def _removed(self) -> None:
        if self.removed_at is None:
            raise HarnessError(f"{self.kind} on {self.node}: its counters are read when it is removed; "
                               "read them after the with block")

    @property
    def matched(self) -> int:
        """Packets the acting rules (DROP, REJECT) hit while installed."""
        self._removed()
        return sum(r.packets for r in self.rules if r.acting)

    @property
    def counted(self) -> int:
        """Packets the counting-only rules saw (every candidate of the acting rule)."""
        self._removed()
        return sum(r.packets for r in self.rules if not r.acting)

    @property
    def frozen(self) -> bool:
        """Every freezer reading taken during the pause said frozen (and there was one)."""
        return bool(self.freezer) and all(s.frozen for s in self.freezer)

    def figures(self) -> dict[str, Any]:
        """What the kernel reported, for the verdict's details and the evidence."""
        out: dict[str, Any] = {"impairment": self.kind, "node": self.node,
                               "held_s": round((self.removed_at or time.time()) - self.applied_at, 2)}
        if self.specs and self.removed_at is not None:
            out["rules"] = [{"chain": r.chain, "rule": r.rule, "packets": r.packets, "bytes": r.bytes}
                            for r in self.rules]
        if self.device:
            out["device"] = self.device
        if self.qdisc:
            out["qdisc"] = vars(self.qdisc)
        if self.freezer:
            out["freezer"] = [{"docker": s.docker_status, "kernel_frozen": s.kernel_frozen, "source": s.source}
                              for s in self.freezer]
        return out


class Impairments:
    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment

    def run(self, node: str, script: str) -> tuple[int, str]:
        """Run ``sh -c script`` in ``node``'s network namespace with NET_ADMIN: (exit code, stdout
        and stderr). The node is tainted (``Node.taint``): a later cell keeps it only if its rules
        and qdiscs read as before (the impairment removes them on exit; a failed removal would
        stay, and the node with it). A node of the CF image runs it itself, through its agent (it
        starts with NET_ADMIN); any other image's runs in the cell's helper in its namespace
        (``Deployment.helper``: the CF image's iptables and tc)."""
        self.dep.nodes[node].taint()
        return self.dep.runner(node).exec(["python3", "-c", _sh(script)])

    def _must(self, node: str, what: str, script: str) -> str:
        code, out = self.run(node, script)
        if code != 0:
            raise HarnessError(f"{what} on {node} failed (exit {code}):\n{script}\n--- output ---\n{out.strip()}")
        return out

    # ---- iptables ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _rules(self, kind: str, node: str, rules: list[str]) -> Iterator[Effect]:
        """Insert ``rules`` (``CHAIN match... [-j TARGET]``, each at the top of its chain, in this
        order) tagged with a fresh comment; on exit read their counters and delete them, in one run."""
        tag = f"harness-{secrets.token_hex(4)}"
        specs = tuple(_tagged(rule, tag) for rule in rules)
        code, out = self.run(node, "set -e\n" + "\n".join(f"iptables -I {s}" for s in specs))
        if code != 0:
            self.run(node, "\n".join(f"iptables -D {s} 2>/dev/null" for s in specs))  # undo a partial install
            raise HarnessError(f"{kind} on {node}: iptables refused a rule (exit {code}); nothing is in place:\n"
                               + "\n".join(f"iptables -I {s}" for s in specs) + f"\n--- output ---\n{out.strip()}")
        effect = Effect(kind, node, tag, specs=specs, applied_at=time.time())
        try:
            yield effect
        finally:
            out = self._must(node, f"removing {kind}", "set -e\niptables-save -c\n"
                             f"echo '{_SAVED}'\n" + "\n".join(f"iptables -D {s}" for s in specs))
            effect.removed_at = time.time()
            effect.rules = parse_iptables_save(out.split(_SAVED)[0], tag)
            if len(effect.rules) != len(specs):
                raise HarnessError(f"{kind} on {node}: {len(specs)} rules installed, {len(effect.rules)} tagged "
                                   f"{tag} found before removal:\n{out.strip()}")

    def loss(self, node: str, port: int, probability: float) -> contextlib.AbstractContextManager[Effect]:
        """Drop this share of packets arriving from ``port`` (the statistic match, random mode). A
        counting rule above it sees every packet from ``port``: ``Effect.counted`` is the base of
        ``Effect.matched``."""
        return self._rules("loss", node, [(f"INPUT -p tcp --sport {port} -m statistic --mode random "
                                           f"--probability {probability} -j DROP"),
                                          f"INPUT -p tcp --sport {port}"])

    def blackhole(self, node: str, port: int) -> contextlib.AbstractContextManager[Effect]:
        """Silently drop everything to and from ``port``: no RST, no ICMP, nothing."""
        return self._rules("blackhole", node, [f"INPUT -p tcp --sport {port} -j DROP",
                                               f"OUTPUT -p tcp --dport {port} -j DROP"])

    def tcp_reset(self, node: str, port: int) -> contextlib.AbstractContextManager[Effect]:
        """Answer every packet arriving on local ``port`` with a TCP RST."""
        return self._rules("tcp_reset", node, [f"INPUT -p tcp --dport {port} -j REJECT --reject-with tcp-reset"])

    def partition(self, node: str) -> contextlib.AbstractContextManager[Effect]:
        """Cut the node off from every network (all traffic but loopback dropped, both ways).

        Done with iptables rather than ``docker network disconnect``: reconnecting would give the
        node a new address, and LBs that resolved it at start would keep dialling the old one.
        """
        return self._rules("partition", node, ["INPUT ! -i lo -j DROP", "OUTPUT ! -o lo -j DROP"])

    # ---- tc ------------------------------------------------------------------------------------------

    def _device_script(self, node: str, network: str | None, device: str | None) -> str:
        """Shell that sets ``$dev``: ``device`` as given, or the interface holding the node's
        address on ``network`` (interface names follow the order networks were attached)."""
        if device:
            return f"dev={device}\n"
        address = self.dep.nodes[node].ip(self.dep.networks[network or "edge"])
        return (f"dev=$(ip -o -4 addr show to {address} | awk '{{print $2}}')\n"
                f"[ -n \"$dev\" ] || {{ echo 'no interface holds {address}'; ip -o -4 addr show; exit 3; }}\n")

    @contextlib.contextmanager
    def _qdisc(self, kind: str, node: str, qdisc: str, network: str | None, device: str | None) -> Iterator[Effect]:
        script = self._device_script(node, network, device) + (f'tc qdisc add dev "$dev" root {qdisc} && '
                                                               'echo "device=$dev"')
        code, out = self.run(node, script)
        if code != 0:
            if "qdisc kind is unknown" in out and qdisc.startswith("netem"):
                raise KernelFeatureMissing("sch_netem (CONFIG_NET_SCH_NETEM)", out)
            raise HarnessError(f"{kind} on {node} failed (exit {code}):\n{script}\n--- output ---\n{out.strip()}")
        dev = out.rsplit("device=", 1)[1].split()[0]
        effect = Effect(kind, node, "", device=dev, applied_at=time.time())
        try:
            yield effect
        finally:
            out = self._must(node, f"removing {kind}", f"set -e\ntc -s -j qdisc show dev {dev}\necho\n"
                                                       f"tc qdisc del dev {dev} root")
            effect.removed_at = time.time()
            effect.qdisc = parse_tc_qdisc(out, qdisc.split()[0])
            if effect.qdisc is None:
                raise HarnessError(f"{kind} on {node}: no root {qdisc.split()[0]} qdisc on {dev} before removal:\n"
                                   f"{out.strip()}")

    def bandwidth(self, node: str, kbit: int, *, network: str = "edge",
                  device: str | None = None) -> contextlib.AbstractContextManager[Effect]:
        """Cap egress of the node's interface on ``network`` (or ``device``) with a token bucket (tbf)."""
        return self._qdisc("bandwidth", node, f"tbf rate {kbit}kbit burst 16kb latency 2s", network, device)

    def delay(self, node: str, ms: int, jitter_ms: int = 0, *, network: str = "edge",
              device: str | None = None) -> contextlib.AbstractContextManager[Effect]:
        """netem delay on egress; raises KernelFeatureMissing where the kernel has no sch_netem."""
        return self._qdisc("delay", node, f"netem delay {ms}ms {jitter_ms}ms", network, device)

    # ---- cgroup freezer ------------------------------------------------------------------------------

    def freezer(self, node: str) -> FreezerState:
        """The node's freezer now: Docker's status, and the kernel's own state where this host's
        ``/proc`` and ``/sys/fs/cgroup`` show the container (the harness runs on the Docker host)."""
        container = self.dep.nodes[node].docker
        container.reload()
        state = container.attrs["State"]
        kernel: bool | None = None
        try:
            relative = freezer_file((PROC / str(state["Pid"]) / "cgroup").read_text())
            if relative is None:
                source = "no freezer cgroup listed"
            else:
                source = str(CGROUP_ROOT / relative)
                kernel = parse_freezer(relative, (CGROUP_ROOT / relative).read_text())
        except OSError as exc:  # not on the Docker host (remote engine): Docker's word only
            source = f"kernel state unreadable: {exc.strerror}"
        return FreezerState(time.time(), str(state["Status"]), kernel, source)

    @contextlib.contextmanager
    def pause(self, node: str) -> Iterator[Effect]:
        """Freeze every process of the node (cgroup freezer): its sockets stop, the kernel still ACKs.
        The freezer is read right after freezing and right before thawing."""
        target = self.dep.nodes[node]
        target.taint(for_good=True)
        target.pause()
        effect = Effect("pause", node, "", applied_at=time.time())
        try:
            effect.freezer.append(self.freezer(node))
            yield effect
            effect.freezer.append(self.freezer(node))
        finally:
            target.unpause()
            effect.removed_at = time.time()


def _sh(script: str) -> str:
    """``sh -c script`` as the Python an agent runs in its fork (``python3 -c``), exit code kept."""
    return f"import subprocess, sys\nsys.exit(subprocess.run(['sh', '-c', {script!r}]).returncode)"


def _tagged(rule: str, tag: str) -> str:
    """``rule`` with the comment match before its target (iptables-save prints it there too)."""
    match, target, action = rule.partition(" -j ")
    return f"{match} -m comment --comment {tag}" + (f" -j {action}" if target else "")


_NETEM: list[str | None] = []


def netem_missing(deployment: Deployment) -> str | None:
    """Why netem cases cannot run here, or None. Probed once per process, on the client's loopback."""
    if not _NETEM:
        code, out = Impairments(deployment).run("client", "tc qdisc add dev lo root netem delay 1ms && "
                                                          "tc qdisc del dev lo root")
        _NETEM.append(None if code == 0 else str(KernelFeatureMissing("sch_netem (CONFIG_NET_SCH_NETEM)", out)))
    return _NETEM[0]
