"""One attempt, one witness: the evidence a check reads is bound to one attempt's id and time window.

Every request a client run makes carries ``X-Harness-Attempt: <id>`` (``harness.cf.client``). The
routers record it with each request (even one they could not parse), the Traffic Controller with
each event (stream open/closed with who closed and the code, keepalive timeouts, rejections), the
echo app with each request. ``Evidence`` is what one attempt left behind and nothing else: no check
reads a cell's whole history, so an earlier test's request can never decide a later verdict.
``Evidence`` is pure data (classified by ``harness.verdicts`` and unit-tested without Docker);
``Witness`` gathers it from a running deployment.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import docker

from harness.errors import ScenarioError
from harness.protocol import wire

if TYPE_CHECKING:
    from harness.deployment import ClientRun, Deployment, Node

ATTEMPT_HEADER = "X-Harness-Attempt"
SLACK_S = 1.0  # clock slack around an attempt's window (containers share the host's clock)


@dataclass(frozen=True)
class Evidence:
    """What one attempt left behind: the client's result, the routers' records, the TC's events."""

    attempt: str
    started: float
    ended: float
    client: dict[str, Any]
    routers: tuple[dict[str, Any], ...] = ()
    tc: tuple[dict[str, Any], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # check-specific facts (counters, injector result)

    @property
    def outcome(self) -> dict[str, Any]:
        """The client's stream outcome (``harness.cf.client.StreamOutcome`` as a dict)."""
        return dict(self.client.get("outcome") or {})

    def tc_events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.tc if e.get("event") == name]

    def stream_requests(self) -> list[dict[str, Any]]:
        """Router records of this attempt other than discovery (``/v2/info``)."""
        return [r for r in self.routers if not str(r.get("path") or "").startswith("/v2/")]

    def router_saw_upgrade(self) -> bool | None:
        """Did a router receive this attempt's handshake with Upgrade? None: no router saw it."""
        parsed = [r for r in self.stream_requests() if r.get("path") is not None]
        if not parsed:
            return None
        return any(bool(r.get("upgrade")) for r in parsed)

    def proxy_header_rejected(self) -> bool:
        """A router answered 400 to bytes that began with a PROXY header it does not read."""
        return any(r.get("status") == 400 and (r.get("proxy_v2_signature") or r.get("proxy_v1_line"))
                   for r in self.routers)

    def proxy_header_broke_tls(self) -> bool:
        """A router's TLS listener failed the handshake on bytes that began with a PROXY header it
        does not read (gorouter without ``enable_proxy``: no HTTP answer, the connection closes)."""
        return any(r.get("tls_handshake_failed") and (r.get("proxy_v2_signature") or r.get("proxy_v1_line"))
                   for r in self.routers)

    def upgrades(self) -> list[dict[str, Any]]:
        """Router records of this attempt whose handshake was answered 101, oldest first."""
        return sorted((r for r in self.routers if r.get("status") == 101), key=lambda r: r["ts"])

    def tc_closed_by(self) -> str | None:
        """Who ended the attempt's stream as the TC saw it (client, tc, lost), None if still open."""
        closed = self.tc_events("stream_closed")
        return str(closed[0]["closed_by"]) if closed else None


def within(records: list[dict[str, Any]], started: float, ended: float) -> list[dict[str, Any]]:
    return [r for r in records if started - SLACK_S <= float(r.get("ts", 0)) <= ended + SLACK_S]


#: TC events that open an exchange, and the event that ends it: the TC logs the end only once its
#: close handshake is done, which may be after the client has reported.
OPENS_AND_CLOSES = (("stream_open", "stream_closed"), ("frames_open", "frames_closed"))


def still_open(events: list[dict[str, Any]]) -> bool:
    """Whether the TC opened an exchange of these events that it has not yet logged as ended."""
    return any(sum(e["event"] == opens for e in events) > sum(e["event"] == closes for e in events)
               for opens, closes in OPENS_AND_CLOSES)


class Witness:
    """Gathers an attempt's evidence from a running deployment (router status ports, TC's event
    list, the probes' pcaps), filtered by the attempt id and its time window."""

    def __init__(self, deployment: "Deployment") -> None:
        self.dep = deployment

    def _json(self, node: str, url: str) -> list[dict[str, Any]]:
        target = self.dep.nodes.get(node)
        if target is None or target.paused:  # a frozen node answers nothing until it is thawed
            return []
        for _ in range(3):
            try:
                code, out = target.exec(["curl", "-sf", url])
            except docker.errors.APIError:  # not running (a killed router keeps no records)
                return []
            if code != 0:
                if not self._keeps_records(target):
                    return []
                raise ScenarioError(f"{node}: GET {url} failed (curl exit {code}) on a running node: the "
                                    "attempt's evidence there cannot be read; see the node's log", out)
            if out.strip():
                return list(json.loads(out))
            # exit 0 and no output: the engine's exec stream came back empty (seen with many execs
            # at once); curl -f always prints the JSON list, so ask again
        raise ScenarioError(f"{node}: {url} answered with empty output three times", "")

    @staticmethod
    def _keeps_records(target: "Node") -> bool:
        """Whether a node whose records could not be read should have had them: it runs, and its
        process has listened since its current start. A killed node keeps none, and one started
        again (a router after a failover test) lost them with its process and may not listen yet;
        a failure on any other is evidence lost, not "none seen" (not once in a full suite run)."""
        try:
            return target.listening_now() and target.docker.status == "running"  # it reloads the state
        except docker.errors.NotFound:  # removed meanwhile
            return False

    def router_records(self, attempt: str, started: float, ended: float,
                       sources: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The routers' records of ``attempt``, and of connections whose PROXY line names one of
        ``sources`` (the attempt's own local ``ip:port``s: a TLS handshake the router failed)."""
        query = f"attempt={attempt}" + "".join(f"&source={s}" for s in sources)
        seen: list[dict[str, Any]] = []
        for i in range(self.dep.topology.router_count):
            seen += self._json(f"router-{i}", f"http://127.0.0.1:8080/requests?{query}")
        return sorted(within(seen, started, ended), key=lambda r: r["ts"])

    def tc_events(self, attempt: str, started: float, ended: float) -> list[dict[str, Any]]:
        events = self._json("tc", f"http://127.0.0.1:8088/harness/events?attempt={attempt}")
        return sorted(within(events, started, ended), key=lambda e: e["ts"])

    def evidence(self, run: "ClientRun", result: dict[str, Any], *, settle: float = 2.0, **extra: Any) -> Evidence:
        """The attempt's evidence once its result is in. A stream (or frames script) the TC opened
        but has not logged as ended yet gets up to ``settle`` s: the client's end and the TC's end
        close at nearly the same time."""
        ended = run.ended or time.time()
        deadline = time.monotonic() + settle
        while True:
            events = self.tc_events(run.attempt, run.started, time.time())
            if not still_open(events) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        sources = tuple((result.get("outcome") or {}).get("local_addresses") or ())
        return Evidence(run.attempt, run.started, ended, result,
                        tuple(self.router_records(run.attempt, run.started, ended, sources)), tuple(events),
                        dict(extra))

    def streams(self, node: str, run: "ClientRun", *, wait: float = 5.0) -> list[wire.TcpStream]:
        """TCP streams captured in ``node``'s namespace that carry this attempt's header, waiting (at
        most ``wait`` s) until each has ended: the probe may lag the exchange under load."""
        marker = f"{ATTEMPT_HEADER}: {run.attempt}".lower().encode()
        deadline = time.monotonic() + wait
        while True:
            found = [s for s in wire.streams(self.dep.probe(node).packets(run.started - SLACK_S))
                     if marker in s.c2s[:4096].lower()]
            if (found and all(s.ended for s in found)) or time.monotonic() > deadline:
                return found
            time.sleep(0.2)
