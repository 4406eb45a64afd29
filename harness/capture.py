"""Probes: captures running in a node's network namespace, read back as packets or pcaps.

On a Docker bridge a container sees only its own traffic, so a probe runs in the namespace of one
end of the link it watches, with NET_RAW and nothing more: it works where the host user is not root.
A node of the CF image runs its capture itself, as a command of its agent (``NodeProbe``: tcpdump
needs only NET_RAW, which Docker grants by default); any other image (an LB's) gets a sidecar
container that joins its namespace (``Probe``: ``network_mode=container:<id>``). A sidecar is a
container start and stop, ~0.3 CPU-s of the engine's on 2 cores, and a matrix probes ~80 nodes.
"""

from __future__ import annotations

import base64
import io
import re
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
from scapy.config import conf

# The host side only reads and writes pcaps: it never routes a packet. Scapy loads the IPv4 and
# IPv6 route tables over netlink when its layers are imported, dissecting the answer for every
# interface; with a run's ~170 veths that was ~1.8 of the ~2.7 CPU-s the import cost each xdist
# worker (scapy's own switch: "Disable this if your routing table is too big"). The Scapy peer
# and the RST injector, which send, run in containers and load them as usual.
conf.route_autoload = conf.route6_autoload = False
# l2 registers the link types tcpdump writes (Ethernet, Linux cooked v1/v2); inet binds IP and TCP
# under them. Without inet a fresh worker's first read dissected "CookedLinuxV2 / Raw" and found no
# TCP stream at all (wire.streams imports inet only when called, after the dissection).
from scapy.layers import inet  # noqa: F401
from scapy.layers import l2  # noqa: F401
from scapy.utils import RawPcapReader, wrpcap
from harness.waiting import LogLine

from harness import engine
from harness.cf.agent import CF
from harness.errors import NodeStartError
from harness.timeouts import scaled

if TYPE_CHECKING:
    from harness.deployment import ClientRun, Node

PCAP = "/tmp/capture.pcap"


class _Capture:
    """What both kinds of probe share: the namespace they were started in, a new pcap on request
    (``rotate``), writing their packets. Each says how it signals its capture and reads its events."""

    namespace: str = ""  # the target's network namespace (SandboxKey) this probe joined
    generation: int = -1  # the target Node's generation when the namespace was read
    rotations: int = 0  # pcaps started since the first (see ``rotate``)
    attempts: int = 0  # rotations asked for

    def _signal(self, name: str) -> bool:
        raise NotImplementedError

    def _events(self) -> list[str]:
        raise NotImplementedError

    def packets(self, since: float | None = None, until: float | None = None) -> list[Any]:
        raise NotImplementedError

    def rotate(self, timeout: float = 20) -> bool:
        """Start a new pcap in the running capture (``harness.cf.capture``: SIGUSR1) for a later cell
        that keeps the node: its pcap then holds only that cell's packets. False if the capture did
        not say ``rotated`` in time (the caller replaces it)."""
        wanted, self.attempts = self.rotations + 1, self.attempts + 1
        if not self._signal("SIGUSR1"):
            return False
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            events = self._events()
            if events.count("rotated") >= wanted:
                self.rotations = wanted
                return True
            if events.count("rotated") + events.count("rotate_failed") >= self.attempts:  # answered no
                return False
            time.sleep(0.1)
        return False

    def write(self, path: Path, since: float | None = None, until: float | None = None) -> Path:
        wrpcap(str(path), self.packets(since, until))
        return path


class Probe(_Capture):
    """A sidecar container in the target's namespace, for a node of any image."""

    def __init__(self, image: str, target_id: str, name: str, labels: dict[str, str]) -> None:
        self.container = (engine.container(image)
                          .with_name(name)
                          .with_command(["capture", "--out", PCAP])
                          .with_kwargs(network_mode=f"container:{target_id}", cap_add=["NET_RAW", "NET_ADMIN"],
                                       labels=labels, init=True)
                          .waiting_for(LogLine(r'"event": "listening"', scaled(30))))

    def start(self) -> "Probe":
        self.container.start()
        return self

    @property
    def ident(self) -> str:
        """Which capture this is (the same while it runs, rotations included)."""
        return str(self.container.get_wrapped_container().id)

    def stop(self) -> None:
        self.container.stop()

    def _signal(self, name: str) -> bool:
        try:
            self.container.get_wrapped_container().kill(signal=name)
        except docker.errors.APIError:
            return False
        return True

    def _events(self) -> list[str]:
        log = self.container.get_wrapped_container().logs(stdout=True, stderr=True)
        return [event.decode() for event in re.findall(rb'"event": "(\w+)"', log)]

    def packets(self, since: float | None = None, until: float | None = None) -> list[Any]:
        """Packets captured so far (the pcap is flushed per packet), optionally in a time window."""
        return _read_pcap(self.container.get_wrapped_container(), since, until)


class NodeProbe(_Capture):
    """The capture run by a CF-image node itself, through its agent (``harness.cf.capture``); the
    same interface as ``Probe``, without a container of its own."""

    def __init__(self, node: "Node") -> None:
        self.node = node
        self.run: "ClientRun | None" = None
        self.pid = 0

    def start(self) -> "NodeProbe":
        self.run, listening = listening_run(self.node, ["python3", "-m", "harness.cf", "capture", "--out", PCAP],
                                            "its capture")
        self.pid = int(listening["pid"])
        self.generation = self.node.generation  # signalled only while its node has not restarted since
        return self

    @property
    def ident(self) -> str:
        return f"{self.node.docker.id}:{self.pid}"

    def _signal(self, name: str) -> bool:
        return signal_process(self.node, self.pid, name)

    def _events(self) -> list[str]:
        assert self.run is not None
        return [str(line.get("event")) for line in self.run.lines]

    def stop(self) -> None:
        """End the capture (tcpdump closes its pcap); nothing to do if the node is gone already."""
        try:
            # after a restart of its node its pid may be another process's: nothing to signal
            if (self.run is not None and not self.run.ended and self.generation == self.node.generation
                    and self.node.docker.status == "running"):
                self._signal("SIGTERM")
        except docker.errors.APIError:  # removed or stopped meanwhile: its capture ended with it
            pass

    def packets(self, since: float | None = None, until: float | None = None) -> list[Any]:
        """The window cut inside the node and sent through its agent (``harness.protocol.pcap_window``);
        a ``get_archive`` of the whole file if that fails."""
        code, out = self.node.exec(["python3", "-c", _WINDOW_SCRIPT.format(mark=_WINDOW_MARK, path=PCAP, since=since, until=until)])
        if code != 0 or not out.startswith(_WINDOW_MARK):
            return _read_pcap(self.node.docker, since, until)
        data = base64.b64decode(out[len(_WINDOW_MARK):])
        return in_window(data) if data else []  # already the window


#: First in the output of the script below, so an answer that is something else is told apart.
_WINDOW_MARK = "pcap:"
#: Run by the node's agent: the window of its pcap, in base64 lines of 64 KB (a line the agent relays
#: as it comes, not one line of the whole file).
_WINDOW_SCRIPT = """
import base64, sys
from harness.protocol.pcap_window import window
data = base64.b64encode(window(open({path!r}, "rb").read(), {since!r}, {until!r}))
sys.stdout.write({mark!r} + "\\n".join(data[i:i + 65536].decode() for i in range(0, len(data), 65536)))
"""


def _read_pcap(container: Any, since: float | None, until: float | None) -> list[Any]:
    """The packets of ``container``'s PCAP (flushed per packet), optionally in a time window."""
    stream, _ = container.get_archive(PCAP)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile(tar.getmembers()[0])
        assert member is not None
        data = member.read()
    return in_window(data, since, until) if data else []


def in_window(pcap: bytes, since: float | None = None, until: float | None = None) -> list[Any]:
    """The pcap's packets captured in [since, until], dissected. The window is applied to the raw
    records first: a probe's pcap holds its node's whole history, and Scapy's dissection (~100 us a
    packet) of every earlier stream was most of a worker's CPU on a busy cell."""
    with RawPcapReader(io.BytesIO(pcap)) as reader:
        layer = conf.l2types.get(reader.linktype, conf.raw_layer)
        out = []
        for raw, meta in reader:
            at = meta.sec + meta.usec / (1e9 if reader.nano else 1e6)
            if (since is None or at >= since) and (until is None or at <= until):
                pkt = layer(raw)
                pkt.time = at
                out.append(pkt)
        return out


def listening_run(node: "Node", cmd: list[str], what: str,
                  attempt: str | None = None) -> tuple["ClientRun", dict[str, Any]]:
    """``node.client_run`` of a command that says ``listening`` once ready (a capture, an RST
    injector, a Scapy peer): the run and that line. Raises NodeStartError, naming ``what``, if not."""
    run = node.client_run(cmd, attempt)
    listening = run.wait_event("listening", 30)
    if listening is None:
        raise NodeStartError(f"{node.name} ({what})", f"{' '.join(cmd[2:4])} to say 'listening'", scaled(30),
                             "\n".join(run.raw[-20:]))
    return run, listening


def signal_process(node: "Node", pid: int, name: str) -> bool:
    """Send signal ``name`` (e.g. ``SIGINT``) to process ``pid`` in ``node``; False if that failed."""
    code, _ = node.exec(["python3", "-c", f"import os,signal; os.kill({pid}, signal.{name})"])
    return code == 0


def inject_rst(node: "Node", port: int, after: float, seq_offset: int = 0) -> "ClientRun":
    """Scapy in ``node``'s namespace (a CF-image node runs it itself, through its agent) resets its
    stream on ``port`` ``after`` s once it listens (``seq_offset`` != 0: a RST outside the window, the
    negative control that must change nothing). Its ``result`` line says what it injected. Run by the
    node rather than by a container joining its namespace: the same namespace and packets, without a
    container start and removal (~0.4 CPU-s of the engine's on 2 cores)."""
    run, _ = listening_run(node, [*CF, "capture", "--inject-rst-port", str(port), "--after", str(after),
                                 "--seq-offset", str(seq_offset)], "its RST injector")
    return run
