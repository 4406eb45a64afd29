"""Brings a topology up in real containers (testcontainers) and tears it down on every path.

Two networks per deployment: ``cf`` (routers, Traffic Controller, Doppler, CC, app; the LBs' back
side) and ``edge`` (the client and the LBs' front side). The topology's DNS is Docker's: on the edge
network each LB carries the hostnames the topology maps to it as network aliases.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Iterator
from urllib.parse import urlencode, urlsplit

import docker
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network
from harness.waiting import ContainerExited, LogLine

from harness import engine, images, reaper, tls, toxiproxy
from harness.agent import ENABLED as AGENTS_ENABLED
from harness.agent import AgentGone, NodeAgent
from harness.agent import handles as agent_handles
from harness.cf.settings import DOPPLER_INGRESS, EMIT_PORT
from harness.drivers import Driver
from harness.errors import HarnessError, NodeStartError, ScenarioError
from harness.timeouts import scaled
from harness.topology import FAULT_LINKS, LoadBalancer, Topology  # noqa: F401 (FAULT_LINKS re-exported)

if TYPE_CHECKING:
    from harness.witness import Evidence, Witness

ROUTER_PORTS = (80, 443, 8080)
#: Where published ports bind: loopback by default; 0.0.0.0 lets an appliance on the network reach
#: the routers (external LB mode).
PUBLISH_ADDRESS = os.environ.get("HARNESS_PUBLISH_ADDRESS", "127.0.0.1")
EXTERNAL_PORT_BASE = int(os.environ.get("HARNESS_ROUTER_PORT_BASE", "20000"))
EXTERNAL_WAIT = float(os.environ.get("HARNESS_EXTERNAL_WAIT", "120"))


def engine_host() -> str:
    """Where ports published on PUBLISH_ADDRESS are reached from here: the host of a ``tcp://``
    DOCKER_HOST (a remote engine), else this machine (testcontainers' own guess, a network gateway
    when it thinks it runs in a container, misses ports bound to 127.0.0.1)."""
    url = urlsplit(os.environ.get("DOCKER_HOST", ""))
    if url.scheme == "tcp" and url.hostname:
        return url.hostname
    return PUBLISH_ADDRESS if PUBLISH_ADDRESS != "0.0.0.0" else "127.0.0.1"


def external_router_ports(index: int) -> dict[int, int]:
    """Fixed host ports of router ``index`` for an external LB: base + 10*index + slot, where the
    slot is 0 for port 80, 1 for 443 and 2 for the 8080 health port (below the ephemeral range)."""
    return {port: EXTERNAL_PORT_BASE + 10 * index + slot for slot, port in enumerate(ROUTER_PORTS)}

APP_GUID = "6a1b9a0e-2b3c-4d5e-8f90-1a2b3c4d5e6f"
OTHER_APP_GUID = "0f0e0d0c-0b0a-4909-8807-060504030201"
#: Tokens of the CC/UAA stand-in: the CLI sends ``bearer <token>``.
TOKENS = {
    "dev": {"scopes": ["cloud_controller.read"], "apps": [APP_GUID]},
    "other": {"scopes": ["cloud_controller.read"], "apps": [OTHER_APP_GUID]},
    "admin": {"scopes": ["cloud_controller.admin", "doppler.firehose"], "apps": ["*"]},
}
#: The UAA stand-in's users (one per grant above, password ``<name>-password``) and clients: ``cf``
#: as the cf CLI and cloudfoundry-client log in, ``nozzle`` for client-credentials nozzles.
UAA_USERS = {name: {"password": f"{name}-password", "scopes": grant["scopes"]} for name, grant in TOKENS.items()}
UAA_CLIENTS = {"cf": {"secret": ""}, "nozzle": {"secret": "nozzle-secret",
                                               "authorities": ["doppler.firehose", "logs.admin"]}}
LISTENING = r'"event": "listening"'
#: Share the CF side (routers, TC, Doppler, CC, app, log readers) between the cells a worker runs
#: in turn: ``HARNESS_SHARE_CF=0`` brings every cell up from nothing (see ``Deployment.reuse``).
SHARE_CF = os.environ.get("HARNESS_SHARE_CF", "1") != "0"
#: Roles a later cell may take over: the CF side behind the LBs. The LBs and fault proxies are always
#: the cell's own (they are what a cell tests, or carry its faults); the client is kept too (below).
SHAREABLE_ROLES = frozenset({"cc", "doppler", "app", "tc", "logcache", "rlpgateway", "router"})
#: Kept too, when untainted: the client, on the edge network the cell keeps with the CF network (the
#: new LB's names then resolve there; the client's agent and imports stay warm). A container less to
#: start and stop per cell, with its probe (~1 CPU-s of a take-over on 2 cores). Were it on another
#: network of the cell (``_left``), it would leave that one and join the new cell's (``_joined``).
MOVABLE_ROLES = frozenset({"client"})
#: Kept after a restart too: router failover kills a router and starts it again, the same command
#: and environment in a new process, its runtime settings kept on disk (``harness.cf.settings``).
#: A later cell waits for the listening line of that start (``Node.listening_again``). 7 of a
#: matrix run's 43 router starts replaced restarted routers (~0.5 CPU-s each of the engine's).
RESTARTABLE_ROLES = frozenset({"router"})


#: What ``Node.net_state`` runs in a node (through its agent): iptables-save of each table without
#: its comment lines and chain counters, then the qdiscs. Docker's own rules (its DNS in the nat
#: table) are there from the start and stay; anything a test left (a rule, a netem or tbf qdisc)
#: changes the text.
NET_STATE = """import re, subprocess
out = [re.sub(r" \\[\\d+:\\d+\\]$", "", line) for table in ("filter", "nat", "mangle", "raw")
       for line in subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True,
                                  check=True).stdout.splitlines() if not line.startswith("#")]
out += subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True, check=True).stdout.splitlines()
print("\\n".join(out))"""


def _log(msg: str) -> None:
    print(f"[deployment] {msg}", file=sys.stderr, flush=True)


@dataclass
class Node:
    """One running container of the deployment, by its topology name."""

    name: str
    role: str
    container: DockerContainer

    @property
    def docker(self) -> docker.models.containers.Container:
        return self.container.get_wrapped_container()

    def logs(self, since: float | None = None) -> str:
        """stdout and stderr (interleaved as written), from ``since`` (epoch seconds) when given."""
        return self.docker.logs(stdout=True, stderr=True, since=since).decode(errors="replace")

    #: runs the CF image, so its resident agent (``harness.agent``) can run commands in it
    agent_capable: bool = False
    #: how it was started (``Deployment._start``'s arguments): a later cell reuses a node only if
    #: it would start it exactly so
    spec: tuple[Any, ...] = ()
    #: Docker's StartedAt when the harness started it: differs once a test killed and restarted it
    started_at: str = ""
    #: a test changed it in a way its spec does not show (iptables rules, a pause): not reused,
    #: unless its packet filter and qdiscs are found as they were before (``taint``, ``clean_again``)
    tainted: bool = False
    #: its packet filter and qdiscs (``net_state``) before its first taint; None: not known
    clean_state: str | None = None
    #: tainted in a way no reading of its state undoes (a pause): never kept again
    tainted_for_good: bool = False
    #: what tests set on the running node and later tests rely on (e.g. the TC's foundation profile)
    settings: dict[str, str] = field(default_factory=dict)
    #: bumped by every state change the harness makes (kill, start, restart): what was read of the
    #: container before (its namespace, its addresses) is read again; nothing else re-inspects it,
    #: as an inspect per question was ~10 engine calls per test
    generation: int = 0
    #: frozen by ``pause()``: its processes answer nothing until ``unpause()``
    paused: bool = False
    _ips: dict[tuple[int, str], str] = field(default_factory=dict, repr=False)  # (generation, network)
    _agent: NodeAgent | None = field(default=None, repr=False)
    _agent_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _taint_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def taint(self, *, for_good: bool = False) -> None:
        """Mark it changed by a test (iptables rules, qdiscs: an impairment, a Scapy peer's rule);
        the first time, note its packet filter and qdiscs first, so that a later cell can find them
        as they were once the test removed what it added (``clean_again``). Peers start side by
        side: the note is taken before any of them adds its rule. ``for_good``: a change no such
        reading shows (a pause: what its frozen processes missed)."""
        with self._taint_lock:
            if for_good:
                self.tainted_for_good = True
            elif not self.tainted and self.agent_capable:
                self.clean_state = self.net_state()
            self.tainted = True

    def net_state(self) -> str | None:
        """Its iptables rules (every table, counters left out) and its qdiscs, as text; None if
        they could not be read."""
        code, out = self.exec(["python3", "-c", NET_STATE])
        return out if code == 0 else None

    def clean_again(self) -> bool:
        """Untainted again if its packet filter and qdiscs are exactly as noted before its first
        taint, and nothing tainted it for good; a later taint notes them anew."""
        if self.tainted and not self.tainted_for_good and self.clean_state is not None \
                and self.net_state() == self.clean_state:
            self.tainted, self.clean_state = False, None
        return not self.tainted

    def exec(self, cmd: list[str]) -> tuple[int, str]:
        """(exit code, stdout+stderr) of ``cmd`` in the node: through its agent when it can."""
        if (agent := self.agent() if agent_handles(cmd) else None) is not None:
            try:
                return agent.run(cmd)
            except AgentGone:
                pass  # the container was stopped or restarted under it: a plain exec says what is left
        result = self.docker.exec_run(cmd)
        return result.exit_code, result.output.decode(errors="replace")

    def ask(self, url: str, accepted: Callable[[str], bool]) -> tuple[bool, int, str]:
        """GET one of the node's own harness endpoints (``curl -sf`` in it) until the answer is
        ``accepted``: (accepted, exit code, output). Asked up to three times: a docker exec under load
        now and then returns no output, and the endpoints that set something are idempotent."""
        code, out = -1, ""
        for _ in range(3):
            code, out = self.exec(["curl", "-sf", url])
            if code == 0 and accepted(out):
                return True, code, out
            time.sleep(0.5)
        return False, code, out

    def agent(self) -> NodeAgent | None:
        """The node's agent (started on first use, again after its container restarted), or None."""
        if not (AGENTS_ENABLED and self.agent_capable):
            return None
        with self._agent_lock:
            if self._agent is None or not self._agent.alive:
                try:
                    self._agent = NodeAgent(self.docker.client.api, self.docker.id)
                except docker.errors.APIError:  # not running: the caller's plain exec reports it
                    return None
            return self._agent

    def close_agent(self) -> None:
        with self._agent_lock:
            if self._agent is not None:
                self._agent.close()
                self._agent = None

    def client_run(self, cmd: list[str], attempt: str | None = None) -> "ClientRun":
        """Run a command whose JSON lines are read as they come (see ``ClientRun``)."""
        return ClientRun(self.docker.client.api, self.docker.id, cmd, attempt, agent=self.agent())
    def ip(self, network: Network) -> str:
        """The node's address on ``network`` (read once per generation: it is fixed while the node runs)."""
        key = (self.generation, network.name)
        if key not in self._ips:
            self.docker.reload()
            self._ips[key] = str(self.docker.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"])
        return self._ips[key]

    # ---- state changes a test makes; each bumps the generation ----------------------------------------

    def kill(self) -> None:
        self.docker.kill()
        self.generation += 1

    def start(self) -> None:
        self.docker.start()
        self.generation += 1

    def restart(self) -> None:
        self.docker.restart()
        self.generation += 1

    def pause(self) -> None:
        self.docker.pause()
        self.paused = True

    def unpause(self) -> None:
        self.docker.unpause()
        self.paused = False

    def unchanged(self) -> bool:
        """Still running as the harness started it, not tainted by a test; not restarted either,
        unless its role is one a restart leaves as it was (``RESTARTABLE_ROLES``) and it is
        listening again."""
        try:
            self.docker.reload()
        except docker.errors.NotFound:
            return False
        state = self.docker.attrs["State"]
        if state["Status"] != "running" or not self.clean_again():
            return False
        if state["StartedAt"] == self.started_at:
            return True
        if self.role in RESTARTABLE_ROLES and self.listening_again(state["StartedAt"]):
            self.started_at = state["StartedAt"]  # its start from now on
            return True
        return False

    def ran_for(self) -> float:
        """Seconds from its start to its exit, by Docker's clock (0 if either is unknown)."""
        self.docker.reload()
        state = self.docker.attrs["State"]
        try:
            return max(0.0, engine.docker_time(state["FinishedAt"]) - engine.docker_time(state["StartedAt"]))
        except (KeyError, ValueError):
            return 0.0

    def listening_now(self, timeout: float = 0) -> bool:
        """Whether it logged its listening line since its current start (Docker's ``StartedAt``),
        waiting up to ``timeout`` s for it."""
        self.docker.reload()
        return self.listening_again(self.docker.attrs["State"]["StartedAt"], timeout=timeout)

    def listening_again(self, started_at: str, timeout: float = 15) -> bool:
        """Whether the node logged its listening line since its last start (``started_at``, Docker's
        RFC 3339 time), waiting up to ``timeout`` s for it."""
        # 0.2 s of slack for the log's own timestamps; a router lives far longer between restarts
        since = engine.docker_time(started_at) - 0.2
        deadline = time.monotonic() + scaled(timeout)
        while not re.search(LISTENING, self.logs(since=since)):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True


class ClientRun:
    """A client command running in the client container, its JSON lines read as they come."""

    def __init__(self, api: Any, container_id: str, cmd: list[str], attempt: str | None = None,
                 agent: NodeAgent | None = None) -> None:
        self.cmd = cmd
        #: Every request of this run carries the attempt id (X-Harness-Attempt); see harness.witness.
        self.attempt = attempt or secrets.token_hex(6)
        self.started = time.time()
        self.ended: float | None = None
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._new = threading.Condition()
        self._done = False
        env = {"HARNESS_ATTEMPT": self.attempt}
        source: Iterator[str] | None = None
        if agent is not None and agent_handles(cmd):
            try:
                source = agent.start(cmd, env)
            except AgentGone:
                source = None
        if source is None:
            source = _exec_lines(api, api.exec_create(container_id, cmd, environment=env)["Id"])
        threading.Thread(target=self._read, args=(source,), daemon=True).start()

    def _read(self, source: Iterator[str]) -> None:
        try:
            for line in source:
                self._add(line)
        except AgentGone as exc:
            self._add(f"[harness] {exc}")
        with self._new:
            self._done = True
            self.ended = self.ended or time.time()
            self._new.notify_all()

    def _add(self, line: str) -> None:
        with self._new:
            self.raw.append(line)
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass
            else:
                if self.lines[-1].get("event") == "result":
                    self.ended = time.time()
            self._new.notify_all()

    def wait_event(self, event: str, timeout: float) -> dict[str, Any] | None:
        """The first line with this event, or None if the command ended or time ran out first."""
        deadline = time.monotonic() + scaled(timeout)
        with self._new:
            while True:
                for line in self.lines:
                    if line.get("event") == event:
                        return line
                remaining = deadline - time.monotonic()
                if self._done or remaining <= 0:
                    return None
                self._new.wait(remaining)

    def result(self, timeout: float) -> dict[str, Any]:
        line = self.wait_event("result", timeout)
        if line is None:
            raise ScenarioError(f"client command gave no result within {scaled(timeout):.0f} s: {self.cmd}",
                                "\n".join(self.raw))
        return line


def _exec_lines(api: Any, exec_id: str) -> Iterator[str]:
    """The output lines of a plain ``docker exec``, as they come."""
    buffer = b""
    for chunk in api.exec_start(exec_id, stream=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode(errors="replace")
    if buffer:
        yield buffer.decode(errors="replace")


_TOXIPROXY_CLIENT = threading.Lock()


def _removing(what: str, remove: Callable[[], object]) -> Callable[[], None]:
    """A teardown step: a failure is logged, never raised, so one failure never stops the rest."""
    def step() -> None:
        try:
            remove()
        except Exception as exc:
            _log(f"could not remove {what}: {exc}")
    return step


def _remove_node(node: Node) -> None:
    """Stop and remove one node (its agent first)."""
    _removing(node.name, lambda: (node.close_agent(), node.container.stop()))()


#: How often a start is tried again when the random host port Docker picked for a published port was
#: taken meanwhile (its allocator draws from 32768-60999, the kernel's ephemeral range, so a host
#: socket can hold the port: "Error starting userland proxy: listen tcp4 ...: bind: address already
#: in use", seen once in a 12-worker run). Each start draws the next port.
PORT_CLASH_RETRIES = 3


#: CPU weight of an LB's container (Docker's default is 1024). A real LB runs on hardware of its own;
#: here it shares two cores with a dozen CF sides, and a starved LB is slow in ways no real one is:
#: the ELB-like LB wrote its PROXY line more than 100 ms after the router accepted (gorouter's PROXY
#: header timeout, ``harness.protocol.proxy_protocol``), the router then read the TLS ClientHello as
#: plain and the cell failed (seen in CI). ``ci/proxy_race.py`` (40 busy containers, 200 connections
#: through the ELB-like LB, accept to PROXY line at the backend), four rounds: at 1024 p99 48-160 ms,
#: max 195 ms, once 5 of 200 over 100 ms; at 8192 p99 6-10 ms, max 18 ms.
LB_CPU_SHARES = 8192


#: An LB's version line by (version command, image ID), asked once per image in a process.
_LB_VERSIONS: dict[tuple[tuple[str, ...], str], str] = {}


def _start_container(container: DockerContainer, *, retry_port_clash: bool) -> None:
    """testcontainers' start, and for a container with published ports, the start again on a port clash."""
    try:
        container.start()
        return
    except docker.errors.APIError as exc:
        if not (retry_port_clash and container._container is not None and _port_clash(exc)):
            raise
        clash = exc
    for _ in range(PORT_CLASH_RETRIES):
        _log(f"{container._name}: {clash.explanation}; starting it again on another port")
        try:
            container._container.start()
            break
        except docker.errors.APIError as exc:
            if not _port_clash(exc):
                raise
            clash = exc
    else:
        raise clash
    if container._wait_strategy is not None:
        container._wait_strategy.wait_until_ready(container)


def _port_clash(exc: docker.errors.APIError) -> bool:
    return "address already in use" in str(exc.explanation or exc)


def _left(node: Node, networks: dict[str, Network]) -> bool:
    """Disconnect an untainted node from the networks its cell still holds, those the next cell does
    not keep (they are about to be removed; the CF and edge networks were taken already); False, and
    it stays for removal with its cell, if it is tainted (and not found clean again) or the engine
    refused."""
    if not node.clean_again():
        return False
    try:
        node.docker.reload()  # its networks now: a node moved before joined one after its last inspect
        for name, net in networks.items():
            if name != "cf" and net.name in node.docker.attrs["NetworkSettings"]["Networks"]:
                node.docker.client.api.disconnect_container_from_network(node.docker.id, net.id)
    except docker.errors.APIError as exc:
        _log(f"{node.name} could not leave its cell's networks ({exc}): removed with it")
        return False
    return True


def _stop_probe(probe: Any) -> None:
    _removing("a probe", probe.stop)()


#: role -> the port a node of it answers ``/harness/env`` on (to itself only)
RUNTIME_PORTS = {"cc": 9022, "router": 8080}


def _set_on(node: Node, url: str) -> None:
    """GET one of ``node``'s harness endpoints that set something on it (from inside the node);
    they answer JSON. Raises NodeStartError when it does not."""
    taken, code, out = node.ask(url, lambda answer: answer.strip().startswith("{"))
    if not taken:
        raise NodeStartError(node.name, f"{url} to answer 200 (exit {code})", 1.5, out)


def _all_at_once(steps: list[Callable[[], object]]) -> None:
    """Run independent start/stop steps in threads (container start-up is mostly waiting on the
    engine and on readiness lines); every step finishes before the first error is raised, so
    whatever did start is known to ``stop()``."""
    if not steps:
        return
    with ThreadPoolExecutor(max_workers=len(steps)) as pool:
        futures = [pool.submit(step) for step in steps]
    errors = [f.exception() for f in futures if f.exception() is not None]
    for other in errors[1:]:  # the first is raised; the others would vanish
        _log(f"also failed: {other}")
    if errors:
        raise errors[0]  # type: ignore[misc]


class BoundProxy:
    """A toxiproxy-python Proxy plus the fault-proxy node it lives on.

    toxiproxy-python keeps one server address per process (class attributes); a deployment has
    several fault proxies, so every call re-points the client at this proxy's server first.
    """

    def __init__(self, deployment: "Deployment", server: str, proxy: Any) -> None:
        self.deployment, self.server, self.proxy, self.name = deployment, server, proxy, proxy.name

    def __getattr__(self, attr: str) -> Any:
        self.deployment.toxiproxy(self.server)
        return getattr(self.proxy, attr)

    def reset(self) -> None:
        self.deployment.toxiproxy(self.server).reset()


@dataclass
class Deployment:
    topology: Topology
    drivers: dict[str, Driver]
    results_dir: Path | None = None
    logger_port: int | None = None  # override the topology's advertised port (mismatch variants)
    faults: tuple[str, ...] = ()  # links routed through a fault proxy, besides the topology's own
    uid: str = field(default_factory=lambda: secrets.token_hex(3))
    nodes: dict[str, Node] = field(default_factory=dict)
    lb_configs: dict[str, str] = field(default_factory=dict)
    networks: dict[str, Network] = field(default_factory=dict)
    probes: dict[str, Any] = field(default_factory=dict)  # node name -> harness.capture.Probe
    #: node name -> (its helper, the node's generation when the helper joined it): see ``helper``
    helpers: dict[str, tuple[Node, int]] = field(default_factory=dict)
    started_s: float = 0.0
    #: the cell this worker ran before: its CF-side nodes are taken over where this cell would
    #: start them exactly the same (``SHAREABLE_ROLES``); everything else of it is removed first
    reuse: "Deployment | None" = None
    began_at: float = 0.0  # epoch seconds: this cell's share of a taken-over node's log starts here
    reused: list[str] = field(default_factory=list)  # names of the nodes taken over
    _candidates: dict[str, Node] = field(default_factory=dict, repr=False)
    _candidate_probes: dict[str, Any] = field(default_factory=dict, repr=False)
    _helper_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ---- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> "Deployment":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def labels(self) -> dict[str, str]:
        return reaper.labels(**{"harness.deployment": self.uid, "harness.topology": self.topology.name})

    def start(self) -> None:
        reaper.ensure_reaper()  # before the networks: removes them too if this process dies
        began, self.began_at = time.monotonic(), time.time()
        self.topology = self.topology.with_faults(self.faults)
        self.faults = self.topology.faults
        topo = self.topology
        local = sorted({"cf", *(self.drivers[lb.driver].image for lb in topo.load_balancers
                                if self.drivers[lb.driver].local_image)})
        self.tags = images.ensure_images(local)
        if self.reuse is not None:
            self._take_over(self.reuse)
        for name in ("cf", "edge"):
            if name not in self.networks:
                self.networks[name] = engine.network(labels=self.labels()).create()
        cf_img = self.tags["cf"]
        self.pki = tls.pki_for(topo.system_domain, topo.apps_domain)
        # Phase 1, all at once: the CF side and the client (a node that dials another at start-up,
        # as Log Cache and the RLP gateway dial Doppler, retries until it answers).
        # Phase 2: the LBs, whose configs name the routers (nginx resolves upstream names at load).
        steps = [lambda: self._start("cc", "cc", cf_img, ["cc"], env={
            # its logger endpoint is set on it while it runs (runtime_env)
            "CF_SYSTEM_DOMAIN": topo.system_domain, "CF_API_SCHEME": "http",
            "CF_TOKENS": json.dumps({"tokens": {**TOKENS, "nozzle": TOKENS["admin"]},
                                     "apps": [APP_GUID, OTHER_APP_GUID]}),
            **self.uaa_env()}),
            lambda: self._start("doppler", "doppler", cf_img, ["doppler"]),
            lambda: self._start("app", "app", cf_img, ["app"])]
        doppler = DOPPLER_INGRESS
        if "doppler-tc" in self.faults:
            steps.append(lambda: self._start_fault("fp-doppler", "cf", ["fp-doppler"], {8082: "doppler:8082"}))
            doppler = "ws://fp-doppler:8082"
        steps.append(lambda: self._start("tc", "tc", cf_img, ["tc"], env={
            "TC_CC_URL": "http://cc:9022", "TC_UAA_URL": "http://cc:9022", "TC_DOPPLER_URLS": doppler,
            "TC_TLS_PEM": self.pki.tc_pem}))  # its timings: set on it below (_set_tc_timings)
        tc = "tc:8081"
        if "router-tc" in self.faults:
            steps.append(lambda: self._start_fault("fp-tc", "cf", ["fp-tc"], {8081: "tc:8081"}))
            tc = "fp-tc:8081"
        routes = {topo.fqdn("api"): "cc:9022", topo.fqdn("uaa"): "cc:9022", topo.fqdn("login"): "cc:9022",
                  topo.fqdn("doppler"): tc, topo.fqdn("echo"): "app:8080"}
        reader_steps, reader_routes = self._log_readers()
        steps += reader_steps
        routes.update(reader_routes)
        external = [lb for lb in topo.load_balancers if self.drivers[lb.driver].external]
        steps += [functools.partial(self._start_router, i, routes, bool(external)) for i in range(topo.router_count)]
        hosts = {topo.fqdn(label): self.drivers[topo.lb(target).driver].address
                 for label, target in topo.dns.items() if self.drivers[topo.lb(target).driver].external}
        steps.append(lambda: self._start("client", "client", cf_img, ["idle"], network="edge", wait=None,
                                         env={"HARNESS_CA_PEM": self.pki.ca_pem}, extra_hosts=hosts))
        _all_at_once(steps)
        self._set_tc_timings()
        self._set_runtime()
        if external:
            self._announce_routers()
        _all_at_once([functools.partial(self._start_lb, lb) for lb in topo.load_balancers])
        self._retire_candidates()
        self.reuse = None  # the previous cell is empty now; do not keep it alive
        self.started_s = time.monotonic() - began
        shared = f", {len(self.reused)} CF nodes kept from the previous cell" if self.reused else ""
        _log(f"{topo.name} ({', '.join(lb.driver for lb in topo.load_balancers)}) up in {self.started_s:.1f} s{shared}")

    def _take_over(self, old: "Deployment") -> None:
        """Take ``old``'s networks, CF-side nodes and untainted client as candidates, then remove the
        rest of it (LBs, fault proxies, the other probes) before this cell starts anything: an old LB
        or fault proxy would otherwise answer to a name this cell gives its own. The edge network is
        kept with the client on it: a network created and removed per cell was ~0.13 CPU-s of the
        engine's (bridge, iptables chains, the client's disconnect and connect); the new LB joins it
        under the cell's names once the old one left."""
        for name in ("cf", "edge"):
            if name in old.networks:
                self.networks[name] = old.networks.pop(name)
        if hasattr(old, "signing_key"):  # the TC trusts the UAA key it fetched; a new key would break it
            self.signing_key = old.signing_key
        self._candidates = {name: old.nodes.pop(name) for name in list(old.nodes)
                            if old.nodes[name].role in SHAREABLE_ROLES
                            or (old.nodes[name].role in MOVABLE_ROLES and _left(old.nodes[name], old.networks))}
        self._candidate_probes = {name: old.probes.pop(name) for name in list(old.probes) if name in self._candidates}
        old.stop()
        self._clear_edge()

    def _clear_edge(self) -> None:
        """Cut off whatever of the previous cell is still on the kept edge network but the nodes
        this cell may keep: a removal that failed (``stop`` logs it and goes on) would otherwise
        leave an old LB answering the names the new LB takes. Raises if the engine refuses."""
        edge = self.networks.get("edge")
        if edge is None:
            return
        api = engine.client().api
        keep = {node.docker.id for node in self._candidates.values()}
        for container_id in set(api.inspect_network(edge.id)["Containers"] or {}) - keep:
            _log(f"a container of the previous cell ({container_id[:12]}) was still on the edge network: cut off")
            try:
                api.disconnect_container_from_network(container_id, edge.id, force=True)
            except docker.errors.APIError as exc:
                raise HarnessError(f"the previous cell's container {container_id[:12]} stays on the edge network "
                                   f"{edge.name} ({exc}); remove it (docker rm -f) and run again") from exc

    def _reused(self, name: str, spec: tuple[Any, ...], network: str, aliases: list[str]) -> Node | None:
        """The previous cell's node ``name`` if it runs exactly as this cell would start it, unchanged
        since; else None, after removing it (its name and aliases are about to be taken again)."""
        old, probe = self._candidates.pop(name, None), self._candidate_probes.pop(name, None)
        if old is None:
            return None
        if old.spec == spec and old.unchanged() and (old.role not in MOVABLE_ROLES
                                                     or self._joined(old, network, aliases)):
            self.nodes[name] = old
            self.reused.append(name)
            # its pcap starts again: this cell's packets only (a capture from before a restart ended
            # with it, and its pid may now be another process's: it is only dropped)
            if probe is not None and probe.generation == old.generation and probe.rotate():
                self.probes[name] = probe
            elif probe is not None:
                _stop_probe(probe)
            return old
        if probe is not None:
            _stop_probe(probe)
        _remove_node(old)
        return None

    def _joined(self, node: Node, network: str, aliases: list[str]) -> bool:
        """Connect a moved node to this cell's ``network`` with the aliases it would start with (a
        node on it already, the kept edge network, stays as it is); False if the engine refused."""
        if self.networks[network].name in node.docker.attrs["NetworkSettings"]["Networks"]:
            return True
        try:
            self.networks[network].connect(node.docker.id, aliases)
        except docker.errors.APIError as exc:
            _log(f"{node.name} could not join this cell's {network} network ({exc}): started anew")
            return False
        return True

    def _retire_candidates(self) -> None:
        """Remove the previous cell's CF nodes this cell did not take (all at once)."""
        olds, self._candidates = list(self._candidates.values()), {}
        probes, self._candidate_probes = list(self._candidate_probes.values()), {}
        _all_at_once([functools.partial(_remove_node, node) for node in olds]
                     + [functools.partial(_stop_probe, probe) for probe in probes])

    def _start_router(self, i: int, routes: dict[str, str], external: bool) -> None:
        cf_img = self.tags["cf"]
        behind_fault = "lb-router" in self.faults
        self._start(f"router-{i}", "router", cf_img, ["router"], env={
            "ROUTER_NAME": f"router-{i}", "ROUTER_ROUTES": json.dumps(routes), "ROUTER_TLS_PEM": self.pki.server_pem,
            # router -> TC over TLS, checking the SAN cf-deployment registers for TC's route
            "ROUTER_BACKEND_TLS": json.dumps({self.topology.fqdn("doppler"): self.topology.fqdn("doppler")}),
            "ROUTER_BACKEND_CA": self.pki.ca_pem},
            aliases=[f"router-{i}-up"] if behind_fault else None, alias_self=not behind_fault,
            publish=ROUTER_PORTS if external else (), host_ports=external_router_ports(i) if external else None)
        if behind_fault:  # the LB dials router-<i>, which is now the fault proxy in front of it
            self._start_fault(f"fp-router-{i}", "cf", [f"router-{i}"],
                              {p: f"router-{i}-up:{p}" for p in (80, 443, 8080)})

    def uaa_env(self) -> dict[str, str]:
        """The UAA stand-in's signing key (fresh per deployment), users and clients."""
        from harness.protocol.uaa import SigningKey

        if not hasattr(self, "signing_key"):  # kept when the CC is replaced but the TC is not
            self.signing_key = SigningKey.generate()
        return {"UAA_SIGNING_KEY": self.signing_key.private_pem, "UAA_KEY_ID": self.signing_key.kid,
                "UAA_USERS": json.dumps(UAA_USERS), "UAA_CLIENTS": json.dumps(UAA_CLIENTS)}

    def _log_readers(self) -> tuple[list[Callable[[], object]], dict[str, str]]:
        """Log Cache and the RLP gateway, fed by the same Doppler as the Traffic Controller: their start
        steps and their routes (``log-cache.<domain>``, ``log-stream.<domain>``)."""
        steps: list[Callable[[], object]] = [
            lambda: self._start("log-cache", "logcache", self.tags["cf"], ["logcache"]),
            lambda: self._start("rlp-gateway", "rlpgateway", self.tags["cf"], ["rlpgateway"])]
        return steps, {self.topology.fqdn("log-cache"): "log-cache:8083",
                       self.topology.fqdn("log-stream"): "rlp-gateway:8088"}

    def tc_env(self) -> dict[str, str]:
        """Traffic Controller timings; real defaults unless a test shrinks them."""
        return {}

    def runtime_env(self) -> dict[str, dict[str, str]]:
        """node -> what this cell sets on it while it runs (``harness.cf.settings.set_runtime``)
        rather than in its start environment: cells that differ only in these keep one node."""
        topo = self.topology
        proxy = {"ROUTER_PROXY_PROTOCOL": str(topo.router_proxy_protocol).lower()}
        logger = {"CF_LOGGER_SCHEME": topo.logger_scheme, "CF_LOGGER_PORT": str(self.logger_port or topo.logger_port)}
        return {"cc": logger, **{f"router-{i}": proxy for i in range(topo.router_count)}}

    def _set_runtime(self) -> None:
        """Set ``runtime_env`` on each node through its ``/harness/env``, asked from inside the
        node, all at once; a node that already runs so is not asked again. The node keeps it
        across a restart (a test kills and starts a router)."""
        from harness.cf.settings import RUNTIME_PATH

        def put(name: str, values: dict[str, str]) -> None:
            node = self.nodes[name]
            if all(node.settings.get(key) == value for key, value in values.items()):
                return
            query = urlencode(sorted(values.items()))
            _set_on(node, f"http://127.0.0.1:{RUNTIME_PORTS[node.role]}{RUNTIME_PATH}?{query}")
            node.settings.update(values)

        _all_at_once([functools.partial(put, name, values) for name, values in self.runtime_env().items()])

    def _set_tc_timings(self) -> None:
        """Give the running TC this cell's timings (``tc_env``) through its ``/harness/timings``,
        not its environment: cells that differ only in them then keep one TC (a start is ~0.5 CPU-s
        here, and ~20 variant cells per qualification differ so). A TC started for this cell runs
        with the defaults, so a cell without timings asks nothing of it."""
        from harness.cf.trafficcontroller import TIMING_ENV, TIMINGS_PATH

        unknown = sorted(set(self.tc_env()) - set(TIMING_ENV))
        if unknown:
            raise HarnessError(f"tc_env: {', '.join(unknown)} cannot be set on a running TC; use "
                               f"{', '.join(sorted(TIMING_ENV))}")
        query = urlencode(sorted((TIMING_ENV[key], value) for key, value in self.tc_env().items()))
        tc = self.nodes["tc"]
        if tc.settings.get("timings", "") == query:
            return
        _set_on(tc, f"http://127.0.0.1:8088{TIMINGS_PATH}?{query}")
        tc.settings["timings"] = query

    def _start(self, name: str, role: str, image: str, command: list[str], *, env: dict[str, str] | None = None,
               network: str = "cf", aliases: list[str] | None = None, wait: str | None = LISTENING,
               alias_self: bool = True, publish: tuple[int, ...] = (), host_ports: dict[int, int] | None = None,
               extra_hosts: dict[str, str] | None = None) -> Node:
        """Start one node; ``publish``ed ports bind PUBLISH_ADDRESS (127.0.0.1 unless set), on random
        host ports unless ``host_ports`` fixes them."""
        spec = (role, image, tuple(command), tuple(sorted((env or {}).items())), network, tuple(aliases or ()),
                alias_self, publish, tuple(sorted((host_ports or {}).items())), tuple(sorted((extra_hosts or {}).items())))
        all_aliases = [*([name] if alias_self else []), *(aliases or [])]
        if (reused := self._reused(name, spec, network, all_aliases)) is not None:
            return reused
        kwargs: dict[str, Any] = {"labels": self.labels(), "init": True}
        if image == self.tags.get("cf"):  # impairments (iptables, tc) run in it by docker exec (harness.impair)
            kwargs["cap_add"] = ["NET_ADMIN"]
        if extra_hosts:
            kwargs["extra_hosts"] = extra_hosts
        if role == "lb":
            kwargs["cpu_shares"] = LB_CPU_SHARES
        container = (engine.container(image)
                     .with_name(f"hx-{self.uid}-{name}")
                     .with_command(command)
                     .with_network(self.networks[network])
                     .with_network_aliases(*all_aliases)
                     .with_kwargs(**kwargs))
        for port in publish:  # with_bind_ports cannot name a host address; docker-py takes (ip, port)
            container.ports[f"{port}/tcp"] = (PUBLISH_ADDRESS, (host_ports or {}).get(port))  # type: ignore[assignment]
        for key, value in (env or {}).items():
            container.with_env(key, value)
        if wait:
            container.waiting_for(LogLine(wait, scaled(30)))
        node = Node(name, role, container, agent_capable=image == self.tags.get("cf"), spec=spec)
        self.nodes[name] = node
        try:
            _start_container(container, retry_port_clash=bool(publish))
        except Exception as exc:
            exited = isinstance(exc, ContainerExited)
            raise NodeStartError(name, f"log line matching {wait!r}", node.ran_for() if exited else scaled(30),
                                 node.logs() if container._container else str(exc), exited=exited) from exc
        if role in SHAREABLE_ROLES | MOVABLE_ROLES:
            node.docker.reload()
            node.started_at = node.docker.attrs["State"]["StartedAt"]
        return node

    def _start_fault(self, name: str, network: str, aliases: list[str], ports: dict[int, str]) -> Node:
        """A fault proxy (Toxiproxy API) listening on ``ports`` under ``aliases``, one proxy per port."""
        image = toxiproxy.fault_proxy_image(self.tags["cf"])
        node = self._start(name, "faultproxy", image.image, list(image.command), network=network, aliases=aliases,
                           alias_self=False, publish=(toxiproxy.API_PORT,), wait=None)
        url = f"http://{engine_host()}:{node.container.get_exposed_port(toxiproxy.API_PORT)}"
        if toxiproxy.wait_version(url, scaled(30)) is None:  # readiness through the API, not a log line
            raise NodeStartError(name, f"GET {url}/version to answer 200 with a JSON version", scaled(30), node.logs())
        with _TOXIPROXY_CLIENT:  # toxiproxy-python's server address is process-wide; starts run in threads
            self.toxiproxy(name).populate([{"name": f"{name}-{port}", "listen": f"0.0.0.0:{port}",
                                            "upstream": upstream} for port, upstream in ports.items()])
        return node

    def toxiproxy(self, name: str) -> Any:
        """A toxiproxy-python client bound to fault proxy ``name`` (the client keeps its server
        address in class attributes, so this re-points it; one test runs per worker at a time)."""
        from toxiproxy import Toxiproxy
        from toxiproxy.api import APIConsumer

        node = self.nodes[name]
        APIConsumer.host, APIConsumer.port = engine_host(), int(node.container.get_exposed_port(8474))
        return Toxiproxy()

    def fault_proxy(self, link: str, lb: str | None = None) -> list["BoundProxy"]:
        """The toxiproxy-python proxies on ``link`` (see FAULT_LINKS), each bound to its server."""
        names = {"client-lb": [f"fp-{lb or self.topology.load_balancers[0].name}"],
                 "lb-router": [f"fp-router-{i}" for i in range(self.topology.router_count)],
                 "router-tc": ["fp-tc"], "doppler-tc": ["fp-doppler"]}[link]
        return [BoundProxy(self, server, proxy) for server in names
                for proxy in self.toxiproxy(server).proxies().values()]

    def _announce_routers(self) -> None:
        """Tell the user where to point their own LB (and write it down for scripts)."""
        table = {f"router-{i}": {p: f"{PUBLISH_ADDRESS}:{external_router_ports(i)[p]}" for p in ROUTER_PORTS}
                 for i in range(self.topology.router_count)}
        if self.results_dir:
            self.results_dir.mkdir(parents=True, exist_ok=True)
            (self.results_dir / "external-lb.json").write_text(json.dumps(table, indent=2))
        _log("external LB: point its back ends at the routers (router port -> host address):")
        for name, ports in table.items():
            _log(f"  {name}: " + ", ".join(f"{p} -> {addr}" for p, addr in ports.items()))

    def _start_lb(self, lb: LoadBalancer) -> None:
        driver = self.drivers[lb.driver]
        if driver.external:  # the user's own LB: nothing to start, wait until it answers
            for listener in lb.listeners:
                host = next(self.topology.fqdn(lab) for lab, t in self.topology.dns.items() if t == lb.name)
                self._wait_reachable(host, listener.port, "client", timeout=EXTERNAL_WAIT)
            return
        routers = [{"host": f"router-{i}", "port": 80, "status_port": 8080} for i in range(self.topology.router_count)]
        config = driver.render({"lb": lb, "routers": routers})
        self.lb_configs[lb.name] = config
        image = self.tags[driver.image] if driver.local_image else driver.image
        node = self._start(lb.name, "lb", image, list(driver.command),
                           env={driver.config_env: config, "LB_TLS_PEM": self.pki.server_pem}, wait=None)
        hostnames = [self.topology.fqdn(label) for label, target in self.topology.dns.items() if target == lb.name]
        if "client-lb" in self.faults:  # clients resolve the LB's names to its fault proxy
            self.networks["edge"].connect(node.docker.id, [lb.name])
            self._start_fault(f"fp-{lb.name}", "edge", hostnames,
                              {lst.port: f"{lb.name}:{lst.port}" for lst in lb.listeners})
        else:
            self.networks["edge"].connect(node.docker.id, [lb.name, *hostnames])
        for listener in lb.listeners:
            self._wait_reachable(hostnames[0] if hostnames else lb.name, listener.port, lb.name)

    def _wait_reachable(self, host: str, port: int, node: str, timeout: float = 20) -> None:
        """Readiness of an LB listener, checked from where clients are: the client container."""
        probe = (f"import socket,sys\ntry:\n socket.create_connection(('{host}',{port}),1).close()\n"
                 "except OSError as e:\n sys.exit(str(e))")
        deadline = time.monotonic() + scaled(timeout)
        while True:
            code, out = self.nodes["client"].exec(["python3", "-c", probe])
            if code == 0:
                return
            exited = self.nodes[node].docker.status == "exited"
            if exited or time.monotonic() > deadline:
                raise NodeStartError(node, f"{host}:{port} reachable from the client ({out.strip()})",
                                     self.nodes[node].ran_for() if exited else scaled(timeout),
                                     self.nodes[node].logs(), exited=exited)
            time.sleep(0.2)
            self.nodes[node].docker.reload()

    def probe_all(self, nodes: list[str]) -> None:
        """Make sure each of ``nodes`` has its probe, starting the missing ones at once."""
        _all_at_once([functools.partial(self.probe, node) for node in nodes])

    def probe(self, node: str) -> Any:
        """The packet capture in ``node``'s namespace, started on first use and kept for the cell.

        A restarted container (a router killed and brought back) gets a new network namespace; a
        probe that joined the old one sees nothing, so it is replaced before it is used again."""
        from harness.capture import NodeProbe, Probe

        probe, owner = self.probes.get(node), self.nodes[node]
        if probe is not None and probe.generation == owner.generation:  # the harness did not restart it since
            return probe
        target = owner.docker
        target.reload()
        namespace = f'{target.attrs["NetworkSettings"]["SandboxKey"]}@{target.attrs["State"]["StartedAt"]}'
        if probe is not None and probe.namespace != namespace:
            probe.stop()
            self.probes.pop(node)
            _log(f"{node} restarted: its probe joins the new network namespace")
        if node not in self.probes:
            if owner.agent() is not None:  # the CF image captures itself: no container to start
                self.probes[node] = NodeProbe(owner).start()
            else:
                suffix = secrets.token_hex(2) if probe is not None else ""
                self.probes[node] = Probe(self.tags["cf"], target.id, f"hx-{self.uid}-probe-{node}{suffix}",
                                          self.labels()).start()
            self.probes[node].namespace = namespace
        self.probes[node].generation = owner.generation
        return self.probes[node]

    def runner(self, node: str) -> Node:
        """What runs commands in ``node``'s network namespace through an agent: the node itself if
        of the CF image, else its helper."""
        return self.nodes[node] if self.nodes[node].agent_capable else self.helper(node)

    def helper(self, node: str) -> Node:
        """A container of the CF image in ``node``'s network namespace (NET_ADMIN, NET_RAW), kept for
        the cell: what the harness runs in the namespace of a node of another image (an LB's:
        an impairment's iptables and tc, a read of its sockets) runs there through its agent, as
        in a CF node. Before, each such command was a helper container of its own (~0.3 CPU-s of
        the engine's; 19 a matrix run) or a ``docker exec`` (a socket read every 2 s). A node
        restarted since gets a new one (a new namespace)."""
        owner = self.nodes[node]
        with self._helper_lock:
            kept = self.helpers.get(node)
            if kept is not None and kept[1] == owner.generation:
                return kept[0]
            if kept is not None:
                _remove_node(kept[0])
            container = (engine.container(self.tags["cf"])
                         .with_name(f"hx-{self.uid}-helper-{node}-{secrets.token_hex(2)}")
                         .with_command(["idle"])
                         .with_kwargs(network_mode=f"container:{owner.docker.id}", cap_add=["NET_ADMIN", "NET_RAW"],
                                      labels=self.labels(), init=True))
            container.start()
            helper = Node(f"{node}-helper", "helper", container, agent_capable=True)
            self.helpers[node] = (helper, owner.generation)
            return helper

    def stop(self) -> None:
        """Remove probes and containers (all at once), then the networks; one failure never stops the rest."""
        nodes = [*self.nodes.values(), *self._candidates.values(), *(h for h, _ in self.helpers.values())]
        self.helpers.clear()
        probes = [*self.probes.values(), *self._candidate_probes.values()]
        _all_at_once([functools.partial(_remove_node, node) for node in nodes]
                     + [functools.partial(_stop_probe, probe) for probe in probes])
        for net in self.networks.values():
            _removing(f"network {net.name}", net.remove)()
        self.probes.clear()
        self.nodes.clear()
        self._candidates.clear()
        self._candidate_probes.clear()
        self.networks.clear()

    # ---- scenario steps --------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        # A customer's LB may serve only TLS on 443 (harness.customer): discovery goes there then.
        lb = self.topology.lb(self.topology.dns["api"])
        https = not any(lst.port == 80 for lst in lb.listeners) and any(lst.port == 443 for lst in lb.listeners)
        return f"{'https' if https else 'http'}://{self.topology.fqdn('api')}"

    def client_run(self, *args: str, attempt: str | None = None) -> ClientRun:
        """Run the client with a fresh attempt id (or ``attempt``: a re-dial of the same attempt)."""
        return self.nodes["client"].client_run(["python3", "-m", "harness.cf", *args], attempt)

    @property
    def witness(self) -> "Witness":
        from harness.witness import Witness

        return Witness(self)

    def evidence(self, run: ClientRun, result: dict[str, Any], **extra: Any) -> "Evidence":
        """The witness's evidence of ``run``'s attempt (and of nothing else)."""
        return self.witness.evidence(run, result, **extra)

    def stream_logs(self, token: str, expect: int, *, timeout: float = 60, app: str = APP_GUID,
                    extra: tuple[str, ...] = ()) -> ClientRun:
        return self.client_run("logs", "--api", self.api_url, "--app", app, "--token", f"bearer {token}" if token else "",
                               "--expect", str(expect), "--timeout", str(scaled(timeout)), *extra)

    def firehose(self, token: str, sub: str, *, timeout: float = 60, settle: float = 3) -> ClientRun:
        return self.client_run("firehose", "--api", self.api_url, "--sub", sub, "--token", f"bearer {token}",
                               "--timeout", str(scaled(timeout)), "--settle", str(scaled(settle)), "--print-seqs")

    def http_get(self, label: str = "echo", path: str = "/", headers: dict[str, str] | None = None) -> dict[str, Any]:
        args = ["http", f"http://{self.topology.fqdn(label)}{path}"]
        for key, value in (headers or {}).items():
            args += ["--header", f"{key}: {value}"]
        return self.client_run(*args).result(30)

    def emit(self, count: int, *, rate: float = 0, app: str = APP_GUID, start: int = 0, size: int = 0,
             line_bytes: int = 0) -> dict[str, Any]:
        """Send ``count`` sequence-numbered log lines through Doppler and wait until they are sent:
        the app node's resident emitter (``harness.cf.apps.EmitEndpoint``), asked through its agent."""
        within = round(scaled(30 + (count / rate if rate > 0 else count / 1000)))  # the emitter stops then
        query = urlencode({"doppler": DOPPLER_INGRESS, "app": app, "count": count, "rate": rate, "start": start,
                           "size": size, "line_bytes": line_bytes, "within": within})
        code, out = self.nodes["app"].exec(["curl", "-sf", "-m", str(within + 10),  # its answer then comes
                                            f"http://127.0.0.1:{EMIT_PORT}/emit?{query}"])
        try:
            result = dict(json.loads(out)) if code == 0 else {}
        except ValueError:
            result = {}
        if result.get("event") != "emitted":
            raise ScenarioError(f"emitter failed (curl exit {code})", out)
        return result

    def client_ip(self) -> str:
        return self.nodes["client"].ip(self.networks["edge"])

    def lb_ips(self) -> set[str]:
        """The LBs' addresses on the router side: what routers see as peer in TCP mode."""
        return {n.ip(self.networks["cf"]) for n in self.nodes.values() if n.role == "lb"}

    def fault_proxy_ips(self) -> frozenset[str]:
        """Client-side addresses of the client<->LB fault proxies: what an LB sees as the client."""
        return frozenset(n.ip(self.networks["edge"]) for name, n in self.nodes.items()
                         if n.role == "faultproxy" and self.networks["edge"].name in
                         n.docker.attrs["NetworkSettings"]["Networks"])

    def environment(self) -> dict[str, Any]:
        """Image IDs and LB versions of this deployment, for the report (computed once). A node's
        image ID is in its container's inspect data; an LB's version is asked once per image (the
        same binary answers the same): an exec into every cell's LB and an image inspect per node
        cost the engine ~0.1 CPU-s a cell."""
        if not hasattr(self, "_environment"):
            versions = {}
            for lb in self.topology.load_balancers:
                driver, node = self.drivers[lb.driver], self.nodes[lb.name]
                if driver.version_command:
                    key = (tuple(driver.version_command), node.docker.attrs["Image"])
                    if key not in _LB_VERSIONS:
                        _, out = node.exec(list(driver.version_command))
                        _LB_VERSIONS[key] = out.strip().splitlines()[0] if out.strip() else ""
                    versions[driver.name] = _LB_VERSIONS[key]
            ids = {node.container.image: node.docker.attrs["Image"] for node in self.nodes.values()}
            self._environment = {"lb_versions": versions, "images": ids}
        return self._environment

    # ---- evidence --------------------------------------------------------------------------------

    def collect(self, into: Path, since: float | None = None, until: float | None = None) -> list[Path]:
        """Write every node's logs, the rendered LB configs and the probes' packets of the window
        [since, until] (one pcap per probed node); return the files written."""
        into.mkdir(parents=True, exist_ok=True)
        written = []
        for name, probe in self.probes.items():
            try:
                written.append(probe.write(into / f"{name}.pcap", since, until))
            except Exception as exc:
                (into / f"{name}.pcap.error").write_text(str(exc))
        for node in self.nodes.values():
            path = into / f"{node.name}.log"
            try:  # a node kept from an earlier cell: only this cell's part of its log
                path.write_text(node.logs(since=self.began_at if node.name in self.reused else None))
            except Exception as exc:
                path.write_text(f"(logs unavailable: {exc})")
            written.append(path)
        for name, config in self.lb_configs.items():
            path = into / f"{name}.conf"
            path.write_text(config)
            written.append(path)
        shutil.copy(self.topology.file, into / "topology.yaml")
        return written


class Succession:
    """Deployments one after another in one process, each taking over the CF side of the one before
    where it would start it the same (``Deployment.reuse``; ``HARNESS_SHARE_CF=0``: from nothing):
    a worker's cells (``harness.plugin.CellManager``) and code that builds its own deployments (the
    bring-your-own-LB tests). ``close()`` stops the last one."""

    def __init__(self) -> None:
        self.last: Deployment | None = None

    def enter(self, deployment: Deployment) -> Deployment:
        """Start ``deployment`` on what the last one leaves; the rest of the last one is removed,
        whether the start worked or not."""
        previous, self.last = self.last, None
        if previous is not None and not SHARE_CF:
            previous.stop()
            previous = None
        deployment.reuse = previous
        try:
            deployment.__enter__()
        finally:
            if previous is not None:
                previous.stop()  # whatever the new one did not take (nothing if it took over)
        self.last = deployment
        return deployment

    def close(self) -> None:
        if self.last is not None:
            self.last.stop()
            self.last = None
