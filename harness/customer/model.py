"""What the harness reads out of a customer's LB config: listeners, idle timeout, findings.

Both parsers (``nginx.py``, ``haproxy.py``) produce a ``CustomerConfig``; the cell is built from
its listeners (``cell.py``) and the report names its findings' lines (``diagnose.py``). Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.outcomes import Outcome

#: The Traffic Controller pings about every 15 s plus a round trip (loggregator-release
#: src/trafficcontroller/internal/proxy/keepalive.go; docs/cf-facts.md "Keepalive"). An LB whose idle
#: cut is at most this long ends idle log streams between pings.
TC_KEEPALIVE_S = 15.0
#: Slack for the ping's round trip and timer granularity: a cut within it is too close to call safe.
KEEPALIVE_MARGIN_S = 2.0
#: AWS Classic ELB's default idle timeout (docs.aws.amazon.com, elb config-idle-timeout.html).
ELB_DEFAULT_IDLE_S = 60.0


#: How a listener-wide fault can show, depending on which request of the check meets it first.
LISTENER_FAULT = (Outcome.DISCOVERY_FAILED, Outcome.HANDSHAKE_REJECTED, Outcome.HANDSHAKE_FAILED,
                  Outcome.UNEXPECTED_STATUS, Outcome.PROXY_HEADER_REJECTED, Outcome.STREAM_CUT,
                  Outcome.CONNECT_TIMEOUT, Outcome.HANDSHAKE_TIMEOUT)


#: How a short idle cut shows in checks that hold a stream: a quiet nozzle or stream is cut.
IDLE_FAULT = (Outcome.STREAM_CUT, Outcome.INCOMPLETE, Outcome.FIREHOSE_SPLIT_WRONG, Outcome.CLOSED_UNEXPECTEDLY)


@dataclass(frozen=True)
class Where:
    """A directive of the customer's config: file, line and the directive as written."""

    file: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{Path(self.file).name}:{self.line} {self.text}"


@dataclass(frozen=True)
class ParsedListener:
    """One port the LB listens on, as the config says."""

    port: int
    protocol: str  # http (the LB parses HTTP) or tcp (it passes bytes)
    tls: bool  # the LB terminates TLS here
    backend_ports: tuple[int, ...]  # router ports it forwards to
    proxy_protocol: str  # PROXY header it sends the routers: none, v1, v2
    backend_tls: bool  # it speaks TLS to the routers (http mode)
    idle_timeout: float | None  # seconds an upgraded/TCP stream may be idle; None: no cut
    idle_where: tuple[Where, ...]  # directives that set it (empty: the LB's built-in default)
    where: Where  # the listen/bind directive

    @property
    def backend_port(self) -> int:
        return self.backend_ports[0] if self.backend_ports else 80


@dataclass(frozen=True)
class Finding:
    """A line of the config that breaks a check, with the outcome it causes and the fix."""

    outcome: Outcome  # what the check observes because of it
    checks: tuple[str, ...]  # checks it breaks ("*": every check through this listener)
    where: tuple[Where, ...]
    problem: str
    fix: str
    port: int | None = None  # the listener it concerns (None: every listener)
    also: tuple[Outcome, ...] = ()  # further outcomes it explains (an idle cut can end any quiet stream)

    @property
    def outcomes(self) -> tuple[Outcome, ...]:
        """Outcomes it explains: a fault on a whole listener ("*") shows as whichever failure the
        check's first request meets (discovery, handshake or plain status)."""
        return (self.outcome, *self.also, *(LISTENER_FAULT if "*" in self.checks else ()))

    def line(self) -> str:
        at = "; ".join(str(w) for w in self.where)
        return f"{at}: {self.problem}; fix: {self.fix}"


@dataclass(frozen=True)
class CustomerConfig:
    """A customer's LB config, parsed, with its router addresses rewritten for the harness."""

    path: Path
    kind: str  # nginx or haproxy
    listeners: tuple[ParsedListener, ...]
    template: str  # the config with router addresses as Jinja expressions (literal text escaped)
    findings: tuple[Finding, ...] = ()
    rewritten: tuple[str, ...] = ()  # what the harness changed, each "file:line what"
    not_rewritten: tuple[str, ...] = ()  # router-bound addresses it could not rewrite, and why
    files: tuple[str, ...] = field(default_factory=tuple)  # the config and every file it includes

    def listener(self, port: int) -> ParsedListener | None:
        return next((lst for lst in self.listeners if lst.port == port), None)


def seconds(value: str, unit: str = "s") -> float | None:
    """nginx/HAProxy time values ('5s', '1h', '500ms', '30'; bare numbers are in ``unit``)."""
    import re

    match = re.fullmatch(r"(\d+(?:\.\d+)?)(us|ms|s|m|h|d)?", value.strip())
    if not match:
        return None
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(match.group(1)) * scale[match.group(2) or unit]
