"""A customer's haproxy.cfg: a small section parser (HAProxy's format is line-based: a section
keyword starts a section, every other line belongs to it), then listeners, idle timeouts, findings,
and router addresses rewritten on the parsed lines. ``haproxy -c`` checks the result when the LB
container starts (images/haproxy/entrypoint.sh).

HAProxy rules relied on (docs.haproxy.org/2.6/configuration.html): a proxy takes the settings of
the last unnamed ``defaults`` section above it; time values without a unit are milliseconds;
``timeout tunnel`` supersedes ``timeout client``/``timeout server`` once a connection is a tunnel
(an upgraded WebSocket in HTTP mode, any established TCP connection), and without it those two
cut idle tunnels; ``mode http`` passes WebSocket upgrades natively; ``option forwardfor`` adds
X-Forwarded-For; ``send-proxy``/``send-proxy-v2`` on a server line send a PROXY header.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.customer.model import (IDLE_FAULT, KEEPALIVE_MARGIN_S, TC_KEEPALIVE_S, CustomerConfig, Finding,
                                    ParsedListener, Where, seconds)
from harness.customer.nginx import WS_CHECKS
from harness.errors import DriverError
from harness.outcomes import Outcome

SECTIONS = ("global", "defaults", "frontend", "backend", "listen", "resolvers", "peers", "userlist", "program",
            "http-errors", "ring", "cache", "mailers", "log-forward", "fcgi-app")
PEM = "/etc/haproxy/lb.pem"  # where the harness writes its certificate chain and key (images/haproxy)


@dataclass
class Line:
    """One meaningful line: its number, its words (quotes honoured), its text without comment."""

    number: int
    words: list[str]
    text: str

    @property
    def key(self) -> str:
        return self.words[0]


@dataclass
class Section:
    kind: str
    name: str
    line: Line
    lines: list[Line] = field(default_factory=list)
    defaults: "Section | None" = None

    def find(self, *words: str) -> Line | None:
        """The last line starting with ``words`` here, else in the defaults it inherits."""
        mine = [ln for ln in self.lines if ln.words[:len(words)] == list(words)]
        if mine:
            return mine[-1]
        return self.defaults.find(*words) if self.defaults and self.kind != "defaults" else None


WhereOf = Callable[[Line], Where]


def sections(text: str) -> list[Section]:
    out: list[Section] = []
    current_defaults: Section | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        body = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not body:
            continue
        try:
            words = shlex.split(body, posix=True)
        except ValueError:
            words = body.split()
        line = Line(number, words, body)
        if words[0] in SECTIONS:
            sec = Section(words[0], words[1] if len(words) > 1 else "", line, defaults=current_defaults)
            if sec.kind == "defaults":
                current_defaults = sec
            out.append(sec)
        elif out:
            out[-1].lines.append(line)
        else:
            raise DriverError(f"line {number}", "(syntax)", f"'{words[0]}' outside any section",
                              "start the file with global, defaults, frontend, backend or listen")
    return out


def _mode(sec: Section) -> str:
    line = sec.find("mode")
    return line.words[1] if line and len(line.words) > 1 else "tcp"  # HAProxy's default mode is tcp


def _timeout(sec: Section | None, name: str) -> tuple[float | None, Line | None]:
    line = sec.find("timeout", name) if sec else None
    if line is None or len(line.words) < 3:
        return None, None
    value = seconds(line.words[2], unit="ms")
    # 0 is "not set": no client/server cut, and a tunnel falls back to them (nextcloud/HaRP#115).
    return (value, line) if value else (None, None)


def parse(path: Path) -> CustomerConfig:
    text = path.read_text()
    secs = sections(text)

    def where(ln: Line) -> Where:
        return Where(str(path), ln.number, ln.text)

    backends = {s.name: s for s in secs if s.kind in ("backend", "listen")}
    listeners: dict[int, ParsedListener] = {}
    findings: list[Finding] = []
    for sec in secs:
        if sec.kind not in ("frontend", "listen"):
            continue
        backend = sec if sec.kind == "listen" else _backend_of(sec, backends)
        for bind in (ln for ln in sec.lines if ln.key == "bind"):
            for address in bind.words[1].split(","):
                match = re.search(r":(\d+)$", address)
                if not match or int(match.group(1)) in listeners:
                    continue
                port = int(match.group(1))
                lst, found = _listener(sec, backend, bind, port, where)
                listeners[port] = lst
                findings += found
    lines = text.splitlines()
    done, missed = _rewrite(secs, lines, where)
    template = _escape("\n".join(lines))
    for i in range(sum(1 for d in done if "address" in d)):
        template = template.replace(f"@@ROUTER{i}@@", f"{{{{ routers[{i} % routers|length].host }}}}")
    return CustomerConfig(path=path, kind="haproxy", listeners=tuple(sorted(listeners.values(), key=lambda x: x.port)),
                          template=template + "\n", findings=tuple(findings), rewritten=tuple(done),
                          not_rewritten=tuple(missed), files=(str(path),))


def _escape(text: str) -> str:
    return text.replace("{{", "{{ '{{' }}").replace("{%", "{{ '{%' }}").replace("{#", "{{ '{#' }}")


def _backend_of(frontend: Section, backends: dict[str, Section]) -> Section | None:
    line = frontend.find("default_backend") or next((ln for ln in frontend.lines if ln.key == "use_backend"), None)
    return backends.get(line.words[1]) if line and len(line.words) > 1 else None


def _servers(backend: Section | None) -> list[tuple[Line, int | None]]:
    """Server lines (``server``, ``server-template``) and their ports (None: none given)."""
    if backend is None:
        return []
    out = []
    for ln in backend.lines:
        if ln.key in ("server", "server-template") and len(ln.words) >= 3:
            address = ln.words[3] if ln.key == "server-template" and len(ln.words) > 3 else ln.words[2]
            match = re.search(r":(\d+)$", address)
            out.append((ln, int(match.group(1)) if match else None))
    return out


def _server_option(backend: Section, line: Line, option: str) -> bool:
    default = backend.find("default-server")
    words = line.words + (default.words if default else [])
    return option in words


def _listener(sec: Section, backend: Section | None, bind: Line, port: int,
              where: WhereOf) -> tuple[ParsedListener, list[Finding]]:
    mode = _mode(sec)
    tls = "ssl" in bind.words[2:]
    servers = _servers(backend)
    ports = tuple(dict.fromkeys(p if p is not None else port for _, p in servers))
    v2 = backend is not None and any(_server_option(backend, ln, "send-proxy-v2") for ln, _ in servers)
    v1 = backend is not None and any(_server_option(backend, ln, "send-proxy") for ln, _ in servers)
    backend_tls = backend is not None and any(_server_option(backend, ln, "ssl") for ln, _ in servers)
    found: list[Finding] = []
    # The idle cut of a tunnel: timeout tunnel (backend side), else the smaller of client and server.
    tunnel, tunnel_at = _timeout(backend, "tunnel")
    client, client_at = _timeout(sec, "client")
    server, server_at = _timeout(backend, "server")
    if tunnel is not None:
        idle, idle_where = tunnel, (where(tunnel_at),)
    else:
        pairs = [(v, ln) for v, ln in ((client, client_at), (server, server_at)) if v is not None]
        idle = min(v for v, _ in pairs) if pairs else None
        idle_where = tuple(where(ln) for v, ln in pairs if v == idle)
    if idle is not None and idle <= TC_KEEPALIVE_S + KEEPALIVE_MARGIN_S:
        fix = ("timeout tunnel 1h" if tunnel is None else f"raise 'timeout tunnel' above "
               f"{TC_KEEPALIVE_S + KEEPALIVE_MARGIN_S:g} s, e.g. timeout tunnel 1h")
        what = "timeout tunnel" if tunnel is not None else "timeout client/server with no timeout tunnel"
        found.append(Finding(Outcome.IDLE_CUT, WS_CHECKS, idle_where,
                             f"{what}: {idle:g} s cuts idle WebSocket streams; the Traffic Controller pings only "
                             f"every {TC_KEEPALIVE_S:g} s, so streams die between log bursts", fix, port, IDLE_FAULT))
    if backend is None:
        found.append(Finding(Outcome.HANDSHAKE_REJECTED, ("*",), (where(bind),), "no backend serves this frontend "
                             "(no default_backend): HAProxy answers 503", "default_backend <your routers>", port))
    for ln, bport in servers:
        if bport not in (80, 443, None):
            found.append(Finding(Outcome.HANDSHAKE_REJECTED if mode == "http" else Outcome.HANDSHAKE_FAILED, ("*",),
                                 (where(ln),), f"forwards to router port {bport}, where gorouter does not listen (it "
                                 "serves 80 and 443)", "point the server at the routers' port 80 or 443", port))
        elif mode == "http" and bport is not None and (bport == 443) != backend_tls:
            found.append(Finding(Outcome.HANDSHAKE_REJECTED, ("*",), (where(ln),),
                                 f"speaks {'TLS' if backend_tls else 'plain HTTP'} to router port {bport}",
                                 "add 'ssl verify none' (or verify with your CA) for 443, none for 80", port))
        elif mode == "tcp" and bport is not None and (tls and bport == 443 or port == 443 and not tls and bport == 80):
            found.append(Finding(Outcome.HANDSHAKE_FAILED, ("*",), (where(bind), where(ln)),
                                 "TLS placement: " + ("TLS ends at the LB, then plain bytes go to router port 443"
                                                      if tls else "the client's TLS bytes go to router port 80"),
                                 "forward TLS untouched to port 443, or terminate it and forward to 80", port))
    if v2:
        found.append(Finding(Outcome.PROXY_HEADER_REJECTED, ("*",), tuple(where(ln) for ln, _ in servers[:1]),
                             "send-proxy-v2: gorouter reads PROXY v1 only", "use send-proxy (v1) with "
                             "router.enable_proxy: true, or no PROXY header", port))
    elif v1:
        found.append(Finding(Outcome.PROXY_HEADER_REJECTED, ("*",), tuple(where(ln) for ln, _ in servers[:1]),
                             "send-proxy: gorouter reads PROXY v1 only with router.enable_proxy: true (CF's default "
                             "is false; the harness's routers model the default)",
                             "set router.enable_proxy: true, or remove send-proxy", port))
    if mode == "http":
        found += _http_findings(sec, backend, port, tls, backend_tls, where)
    elif not (v1 or v2):
        found.append(Finding(Outcome.LB_IP_AS_CLIENT, ("xff",), (where(bind),), "mode tcp without send-proxy: the "
                             "routers see the LB's address as the client's", "send-proxy on the server lines with "
                             "router.enable_proxy: true", port))
    proxy = "v2" if v2 else "v1" if v1 else "none"
    return ParsedListener(port, mode if mode in ("http", "tcp") else "tcp", tls, ports, proxy, backend_tls, idle,
                          idle_where, where(bind)), found


def _http_findings(sec: Section, backend: Section | None, port: int, tls: bool, backend_tls: bool,
                   where: WhereOf) -> list[Finding]:
    found: list[Finding] = []
    scopes = [s for s in (sec, backend) if s is not None]
    for s in scopes:
        for ln in s.lines:
            if ln.words[:2] == ["http-request", "del-header"] and ln.words[2:3] and \
                    ln.words[2].lower() in ("upgrade", "connection"):
                found.append(Finding(Outcome.UPGRADE_STRIPPED, WS_CHECKS, (where(ln),),
                                     f"deletes the {ln.words[2]} header: the routers get a plain GET",
                                     "remove this line", port))
            if ln.words[:2] == ["http-request", "set-header"] and len(ln.words) > 3:
                name, value = ln.words[2].lower(), ln.words[3]
                if name == "upgrade" and "websocket" not in value.lower():
                    found.append(Finding(Outcome.HANDSHAKE_REJECTED, WS_CHECKS, (where(ln),),
                                         f"sets 'Upgrade: {value}': the Traffic Controller answers 400 when Upgrade "
                                         "lacks 'websocket'", "remove this line", port))
                if name == "connection" and "upgrade" not in value.lower():
                    found.append(Finding(Outcome.UPGRADE_STRIPPED, WS_CHECKS, (where(ln),),
                                         f"sets 'Connection: {value}': the routers see no upgrade request",
                                         "remove this line", port))
    if not any(s.find("option", "forwardfor") for s in scopes):
        found.append(Finding(Outcome.LB_IP_AS_CLIENT, ("xff",), (where(sec.line),),
                             "mode http without 'option forwardfor': the router appends the LB's address, so apps "
                             "see the LB as the client", "option forwardfor", port))
    if tls and not backend_tls and not any(
            ln.words[:3] == ["http-request", "set-header", "X-Forwarded-Proto"]
            or ln.words[:3] == ["http-request", "add-header", "X-Forwarded-Proto"] for s in scopes for ln in s.lines):
        found.append(Finding(Outcome.XFP_WRONG, ("xfp",), (where(sec.line),),
                             "TLS ends at the LB and no X-Forwarded-Proto is set: the router sets 'http'",
                             "http-request set-header X-Forwarded-Proto https if { ssl_fc }", port))
    return found


def _rewrite(secs: list[Section], lines: list[str], where: WhereOf) -> tuple[list[str], list[str]]:
    """Router addresses on server/server-template lines -> placeholders; certificates -> the
    harness's; a server-template becomes N server lines (its FQDN needs a resolver the harness lacks)."""
    done: list[str] = []
    missed: list[str] = []
    n = 0
    for sec in secs:
        for ln in sec.lines:
            raw = lines[ln.number - 1]
            if ln.key == "bind" and "crt" in ln.words:
                cert = ln.words[ln.words.index("crt") + 1]
                if cert != PEM:
                    lines[ln.number - 1] = raw.replace(cert, PEM)
                    done.append(f"{where(ln)}: crt -> {PEM} (the harness's certificate)")
            if ln.key == "user" or ln.key == "group" or ln.key == "chroot":
                lines[ln.number - 1] = "  # " + raw.strip() + "  # dropped by the harness"
                done.append(f"{where(ln)}: dropped (the harness's HAProxy runs as its own user)")
            if ln.key == "server" and len(ln.words) >= 3:
                match = re.fullmatch(r"(\[[^\]]+\]|[^:]+)(:\d+)?", ln.words[2])
                if not match or ln.words[2].startswith(("/", "unix@", "abns@", "ipv4@", "ipv6@")):
                    missed.append(f"{where(ln)}: '{ln.words[2]}' is not an address the harness can rewrite")
                    continue
                lines[ln.number - 1] = raw.replace(ln.words[2], f"@@ROUTER{n}@@{match.group(2) or ''}", 1)
                done.append(f"{where(ln)}: address -> a harness router, port kept")
                n += 1
            elif ln.key == "server-template" and len(ln.words) >= 4:
                prefix, count, address, opts = ln.words[1], ln.words[2], ln.words[3], ln.words[4:]
                port = (re.search(r"(:\d+)$", address) or [None, ""])[1]  # type: ignore[index]
                total = int(count.split("-")[-1]) if re.fullmatch(r"\d+(-\d+)?", count) else 2
                indent = raw[:len(raw) - len(raw.lstrip())]
                new = []
                for i in range(1, total + 1):
                    new.append(f"{indent}server {prefix}{i} @@ROUTER{n}@@{port} {' '.join(opts)}".rstrip())
                    done.append(f"{where(ln)}: server {prefix}{i}: address -> a harness router, port kept")
                    n += 1
                lines[ln.number - 1] = "\n".join(new)
    return done, missed
