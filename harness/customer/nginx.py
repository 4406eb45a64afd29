"""A customer's nginx.conf, read with crossplane (nginx's own parser library), never with regexes.

From the parsed tree: the listeners (``http`` servers are HTTP mode, ``stream`` servers TCP mode),
the idle timeout of upgraded streams, and findings naming the directive at fault. Router addresses
(upstream ``server`` lines and ``proxy_pass`` straight to an address, ``include``d files too) are
rewritten on the tree, which crossplane then builds back into one file.

nginx rules relied on (nginx.org/en/docs/http/ngx_http_proxy_module.html, /http/websocket.html):
``proxy_http_version`` defaults to 1.0, which cannot upgrade; ``Upgrade`` and ``Connection`` are
hop-by-hop and must be set with ``proxy_set_header``; ``proxy_set_header`` is inherited from the
outer level only when the current level sets none; an upgraded connection is closed after
``proxy_read_timeout`` (default 60 s) without data from the upstream; stream ``proxy_timeout``
defaults to 10 min.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import crossplane

from harness.customer.model import (IDLE_FAULT, KEEPALIVE_MARGIN_S, TC_KEEPALIVE_S, CustomerConfig, Finding,
                                    ParsedListener, Where, seconds)
from harness.errors import DriverError
from harness.outcomes import Outcome

Directive = dict[str, Any]
PEM = "/etc/nginx/lb.pem"  # where the harness writes its certificate chain and key (images/nginx)
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"  # Debian's libnginx-mod-stream
ROUTER = "@@ROUTER{}@@"  # placeholder for a router address until the built text is escaped
IDLE_CHECK = "idle_measured"
#: Checks that make a WebSocket handshake (the measured idle cut too).
WS_CHECKS = ("logs", "firehose", "auth_401", "auth_404", "on_wire", "crafted_split_handshake",
             "crafted_header_casing", IDLE_CHECK)


def parse(path: Path) -> CustomerConfig:
    payload = crossplane.parse(str(path), catch_errors=True, combine=False, check_ctx=True, check_args=True)
    fatal = [e for e in payload["errors"] if "No such file" not in e.get("error", "")]
    if fatal:
        err = fatal[0]
        raise DriverError(f"{err.get('file', path)}:{err.get('line')}", "(syntax)", err["error"],
                          "fix the config so that 'nginx -t' accepts it")
    tree = _combined(payload, 0)
    files = tuple(c["file"] for c in payload["config"])
    listeners, findings = _analyse(tree)  # before the rewrite: findings quote the customer's own lines
    rewrite = _Rewriter(path)
    rewrite.walk(tree, [])
    text = _escape(crossplane.build(rewrite.header() + tree, indent=2))
    for i in range(rewrite.count):
        text = text.replace(ROUTER.format(i), f"{{{{ routers[{i} % routers|length].host }}}}")
    return CustomerConfig(path=path, kind="nginx", listeners=listeners, template=text + "\n", findings=findings,
                          rewritten=tuple(rewrite.done), not_rewritten=tuple(rewrite.missed), files=files)


def _combined(payload: dict[str, Any], index: int) -> list[Directive]:
    """The parsed tree of config ``index`` with every ``include`` replaced by its files' trees, each
    directive tagged with its own file (crossplane's ``combine=True`` mislabels the directives that
    follow an include). An include that could not be read on this host stays as it is."""
    config = payload["config"][index]

    def inline(block: list[Directive]) -> list[Directive]:
        out: list[Directive] = []
        for d in block:
            d = {**d, "file": config["file"]}
            if d["directive"] == "include" and d.get("includes"):
                for i in d["includes"]:
                    out += _combined(payload, i)
                continue
            d.pop("includes", None)
            if "block" in d:
                d["block"] = inline(d["block"])
            out.append(d)
        return out

    return inline(config["parsed"])


def _where(d: Directive) -> Where:
    return Where(d["file"], d["line"], " ".join([d["directive"], *d["args"]]))


def _escape(text: str) -> str:
    return text.replace("{{", "{{ '{{' }}").replace("{%", "{{ '{%' }}").replace("{#", "{{ '{#' }}")


def _host_port(address: str, default_port: int) -> tuple[str, int] | None:
    """``10.0.0.4:80`` -> (10.0.0.4, 80); None for unix sockets and variables."""
    if address.startswith("unix:") or "$" in address:
        return None
    match = re.fullmatch(r"(\[[^\]]+\]|[^:/]+)(?::(\d+))?", address)
    return (match.group(1), int(match.group(2) or default_port)) if match else None


class _Rewriter:
    """Router addresses become placeholders; certificate paths become the harness's; what could
    not be rewritten is named."""

    def __init__(self, path: Path) -> None:
        self.path, self.count = path, 0
        self.done: list[str] = []
        self.missed: list[str] = []
        self.upstreams: set[str] = set()
        self.has_stream = self.loads_stream = False

    def header(self) -> list[Directive]:
        if self.has_stream and not self.loads_stream:
            self.done.append(f"(top) load_module {STREAM_MODULE}: Debian's nginx loads the stream module this way")
            return [{"directive": "load_module", "args": [STREAM_MODULE], "line": 0, "file": str(self.path)}]
        return []

    def router(self, d: Directive, index: int, default_port: int, *, scheme: str = "") -> None:
        before = _where(d)
        parsed = _host_port(d["args"][index].removeprefix(scheme), default_port)
        if parsed is None:
            self.missed.append(f"{before}: not an address the harness can point at a router")
            return
        d["args"][index] = f"{scheme}{ROUTER.format(self.count)}:{parsed[1]}"
        self.count += 1
        self.done.append(f"{before}: address -> a harness router, port {parsed[1]} kept")

    def walk(self, block: list[Directive], context: list[str]) -> None:
        for d in block:
            if d["directive"] == "upstream":
                self.upstreams.add(d["args"][0])
        for d in block:
            name = d["directive"]
            if name == "stream":
                self.has_stream = True
            elif name == "load_module" and "stream" in d["args"][0]:
                self.loads_stream = True
            elif name == "user":
                self.done.append(f"{_where(d)}: dropped (the harness's nginx runs as its own user)")
                d["drop"] = True
            elif name in ("ssl_certificate", "ssl_certificate_key") and d["args"] != [PEM]:
                self.done.append(f"{_where(d)}: -> {PEM} (the harness's certificate for its domain)")
                d["args"] = [PEM]
            elif name == "server" and context[-1:] == ["upstream"]:
                self.router(d, 0, 80)
            elif name == "proxy_pass":
                self._proxy_pass(d, context)
            if "block" in d:
                self.walk(d["block"], [*context, name])
        block[:] = [d for d in block if not d.get("drop")]

    def _proxy_pass(self, d: Directive, context: list[str]) -> None:
        target = d["args"][0]
        if "stream" in context:
            if target not in self.upstreams:
                self.router(d, 0, 80)
            return
        match = re.match(r"(https?://)([^/]+)(.*)", target)
        if not match:
            self.missed.append(f"{_where(d)}: not an http(s):// URL")
            return
        host = match.group(2)
        if host in self.upstreams:
            return
        d["args"][0] = match.group(1) + host  # the path goes back on after the address
        self.router(d, 0, 443 if match.group(1) == "https://" else 80, scheme=match.group(1))
        d["args"][0] += match.group(3)


# ---- analysis: listeners, idle timeouts, findings --------------------------------------------------


def _children(block: list[Directive], name: str) -> Iterator[Directive]:
    return (d for d in block if d["directive"] == name)


def _first(chain: list[list[Directive]], name: str) -> Directive | None:
    """The directive as nginx inherits it: the innermost level that sets it."""
    for block in chain:
        if found := next(_children(block, name), None):
            return found
    return None


def _headers(chain: list[list[Directive]]) -> tuple[dict[str, Directive], list[Directive]]:
    """``proxy_set_header`` as nginx applies it: only the innermost level that has any (its lines)."""
    for block in chain:
        lines = list(_children(block, "proxy_set_header"))
        if lines:
            return {d["args"][0].lower(): d for d in lines}, lines
    return {}, []


def _listen_port(d: Directive) -> int | None:
    match = re.search(r"(?:^|:|\])(\d+)$", d["args"][0]) or re.fullmatch(r"(\d+)", d["args"][0])
    return int(match.group(1)) if match else None


def _upstream_ports(tree: list[Directive], name: str, default: int) -> list[tuple[int, Directive]]:
    for ctx in tree:
        for up in _children(ctx.get("block", []), "upstream"):
            if up["args"][0] == name:
                return [(p[1], s) for s in _children(up["block"], "server")
                        if (p := _host_port(s["args"][0], default))]
    return []


def _analyse(tree: list[Directive]) -> tuple[tuple[ParsedListener, ...], tuple[Finding, ...]]:
    listeners: dict[int, ParsedListener] = {}
    findings: list[Finding] = []
    for http in _children(tree, "http"):
        for server in _children(http["block"], "server"):
            for listen in _children(server["block"], "listen"):
                port = _listen_port(listen)
                if port is None or port in listeners:
                    continue  # nginx picks the first server of a port for an unknown Host (no default_server)
                lst, found = _http_listener(tree, http, server, listen, port)
                listeners[port] = lst
                findings += found
    for stream in _children(tree, "stream"):
        for server in _children(stream["block"], "server"):
            for listen in _children(server["block"], "listen"):
                port = _listen_port(listen)
                if port is None or port in listeners:
                    continue
                lst, found = _stream_listener(tree, stream, server, listen, port)
                listeners[port] = lst
                findings += found
    return tuple(sorted(listeners.values(), key=lambda lst: lst.port)), tuple(findings)


def _location(server: Directive) -> Directive | None:
    """The location that serves ``/`` paths: ``location /`` or the first one with proxy_pass."""
    locations = list(_children(server["block"], "location"))
    return next((loc for loc in locations if loc["args"] in (["/"], ["^~", "/"])), None) or \
        next((loc for loc in locations if any(_children(loc["block"], "proxy_pass"))), None)


def _idle(chain: list[list[Directive]], name: str, default: float) -> tuple[float | None, tuple[Where, ...]]:
    d = _first(chain, name)
    return (seconds(d["args"][0]), (_where(d),)) if d else (default, ())


def _http_listener(tree: list[Directive], http: Directive, server: Directive, listen: Directive,
                   port: int) -> tuple[ParsedListener, list[Finding]]:
    tls = "ssl" in listen["args"][1:] or any(d["args"] == ["on"] for d in _children(server["block"], "ssl"))
    location = _location(server)
    chain = [b for b in ((location or {}).get("block"), server["block"], http["block"]) if b is not None]
    proxy = _first(chain[:1], "proxy_pass") if location else None
    found: list[Finding] = []
    idle, idle_where = _idle(chain, "proxy_read_timeout", 60.0)
    if proxy is None:
        ret = _first([server["block"], *chain[:1]], "return")
        why = f"port {port} answers itself ({_where(ret) if ret else 'no proxy_pass'}) instead of proxying to CF"
        found.append(Finding(Outcome.UNEXPECTED_STATUS, ("*",), (_where(ret or listen),), why,
                             "proxy_pass this port to the routers (a redirect to https breaks plain-HTTP clients)",
                             port))
        return ParsedListener(port, "http", tls, (), "none", False, idle, idle_where, _where(listen)), found
    target = proxy["args"][0]
    backend_tls = target.startswith("https://")
    host = re.sub(r"^https?://", "", target).split("/")[0]
    servers = _upstream_ports(tree, host, 443 if backend_tls else 80) or \
        ([(p[1], proxy)] if (p := _host_port(host, 443 if backend_tls else 80)) else [])
    ports = tuple(dict.fromkeys(p for p, _ in servers))
    here = _where(proxy)
    for bport, line in servers:
        if bport not in (80, 443):
            found.append(Finding(Outcome.HANDSHAKE_REJECTED, ("*",), (_where(line),),
                                 f"forwards to router port {bport}, where gorouter does not listen (it serves 80 "
                                 "and 443): nginx answers 502", "point the upstream at the routers' port 80 (or 443 "
                                 "with proxy_pass https://)", port))
        elif (bport == 443) != backend_tls:
            found.append(Finding(Outcome.HANDSHAKE_REJECTED, ("*",), (here, _where(line)),
                                 f"speaks {'TLS' if backend_tls else 'plain HTTP'} to router port {bport}, which "
                                 f"expects {'plain HTTP' if bport == 80 else 'TLS'}: nginx answers 502 or 400",
                                 "use proxy_pass http:// to port 80 or https:// to port 443", port))
    version = _first(chain, "proxy_http_version")
    if version is None or version["args"][0] != "1.1":
        found.append(Finding(Outcome.UPGRADE_STRIPPED, WS_CHECKS, (here, *([_where(version)] if version else [])),
                             "nginx speaks HTTP/1.0 to the routers (proxy_http_version defaults to 1.0), which "
                             "cannot carry an Upgrade", "add 'proxy_http_version 1.1;' next to proxy_pass", port))
    headers, lines = _headers(chain)
    level = next((i for i, b in enumerate(chain) if lines and lines[0] in b), len(chain))
    shadow = ""
    if any(next(_children(b, "proxy_set_header"), None) for b in chain[level + 1:]):
        shadow = (" (this level's own proxy_set_header lines hide the outer level's: nginx inherits them only "
                  "when a level sets none)")
    upgrade, connection = headers.get("upgrade"), headers.get("connection")
    fix_headers = "add 'proxy_set_header Upgrade $http_upgrade;' and " \
                  "'proxy_set_header Connection $connection_upgrade;' " \
                  "(with map $http_upgrade $connection_upgrade { default upgrade; '' close; })"
    if upgrade is None:
        found.append(Finding(Outcome.UPGRADE_STRIPPED, WS_CHECKS, (here, *map(_where, lines[:1])),
                             "Upgrade is a hop-by-hop header: without 'proxy_set_header Upgrade' nginx drops it"
                             + shadow, fix_headers, port))
    elif upgrade["args"][1].lower() not in ("$http_upgrade", "websocket"):
        found.append(Finding(Outcome.HANDSHAKE_REJECTED, WS_CHECKS, (_where(upgrade),),
                             f"sends 'Upgrade: {upgrade['args'][1]}': the Traffic Controller (gorilla/websocket) "
                             "answers 400 when Upgrade lacks 'websocket'", "proxy_set_header Upgrade $http_upgrade;",
                             port))
    if upgrade is not None and (connection is None or not _connection_upgrades(tree, connection["args"][1])):
        found.append(Finding(Outcome.UPGRADE_STRIPPED, WS_CHECKS, (_where(connection or proxy),),
                             "Connection does not carry 'upgrade' (nginx sends 'Connection: close' unless told): "
                             "the routers see no upgrade request" + shadow, fix_headers, port))
    if "x-forwarded-for" not in headers:
        found.append(Finding(Outcome.LB_IP_AS_CLIENT, ("xff",), (here,),
                             "HTTP mode without 'proxy_set_header X-Forwarded-For': the router appends the LB's "
                             "address, so apps see the LB as the client" + shadow,
                             "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;", port))
    if tls and not backend_tls and "x-forwarded-proto" not in headers:
        found.append(Finding(Outcome.XFP_WRONG, ("xfp",), (here,),
                             "TLS ends at the LB and no X-Forwarded-Proto is set: the router sets 'http', so apps "
                             "think HTTPS requests came in plain", "proxy_set_header X-Forwarded-Proto $scheme;", port))
    found += _idle_finding(idle, idle_where, "proxy_read_timeout", port,
                           "proxy_read_timeout 1h; (in the location that proxies WebSockets)")
    return ParsedListener(port, "http", tls, ports, "none", backend_tls, idle, idle_where, _where(listen)), found


def _connection_upgrades(tree: list[Directive], value: str) -> bool:
    """Does ``proxy_set_header Connection <value>`` send 'upgrade' when the client asks to upgrade?"""
    if value.lower() == "upgrade":
        return True
    for http in _children(tree, "http"):
        for m in _children(http["block"], "map"):
            if len(m["args"]) == 2 and m["args"][1] == value:
                return any(d["args"] and d["args"][0].lower() == "upgrade" for d in m["block"]
                           if d["directive"] not in ("''", '""', ""))
    return False


def _idle_finding(idle: float | None, where: tuple[Where, ...], name: str, port: int, fix: str) -> list[Finding]:
    if idle is None or idle > TC_KEEPALIVE_S + KEEPALIVE_MARGIN_S:
        return []
    return [Finding(Outcome.IDLE_CUT, WS_CHECKS, where,
                    f"{name} {idle:g} s cuts idle WebSocket streams; the Traffic Controller pings only every "
                    f"{TC_KEEPALIVE_S:g} s, so streams die between log bursts",
                    f"{fix} (anything above {TC_KEEPALIVE_S + KEEPALIVE_MARGIN_S:g} s)", port, IDLE_FAULT)]


def _stream_listener(tree: list[Directive], stream: Directive, server: Directive, listen: Directive,
                     port: int) -> tuple[ParsedListener, list[Finding]]:
    tls = "ssl" in listen["args"][1:]
    chain = [server["block"], stream["block"]]
    proxy = _first(chain[:1], "proxy_pass")
    idle, idle_where = _idle(chain, "proxy_timeout", 600.0)
    pp = _first(chain, "proxy_protocol")
    proxy_v1 = bool(pp and pp["args"] == ["on"])
    found: list[Finding] = []
    ports: tuple[int, ...] = ()
    if proxy is not None:
        target = proxy["args"][0]
        servers = _upstream_ports(tree, target, 80) or ([(p[1], proxy)] if (p := _host_port(target, 80)) else [])
        ports = tuple(dict.fromkeys(p for p, _ in servers))
        for bport, line in servers:
            if bport not in (80, 443):
                found.append(Finding(Outcome.HANDSHAKE_FAILED, ("*",), (_where(line),),
                                     f"forwards to router port {bport}, where gorouter does not listen: the "
                                     "connection is reset", "point the upstream at the routers' port 80 or 443", port))
            elif port == 443 and not tls and bport == 80:
                found.append(Finding(Outcome.HANDSHAKE_FAILED, ("*",), (_where(listen), _where(line)),
                                     "passes the client's TLS bytes to router port 80, which speaks plain HTTP",
                                     "forward port 443 to the routers' TLS port 443 (TLS passes through)", port))
            elif tls and bport == 443:
                found.append(Finding(Outcome.HANDSHAKE_FAILED, ("*",), (_where(listen), _where(line)),
                                     "ends TLS at the LB, then sends plain bytes to router port 443, which expects "
                                     "TLS", "either drop 'ssl' from listen (TLS passes through) or forward to port 80",
                                     port))
    if proxy_v1:
        found.append(Finding(Outcome.PROXY_HEADER_REJECTED, ("*",), (_where(pp),),  # type: ignore[arg-type]
                             "sends a PROXY v1 header, which gorouter reads only with router.enable_proxy: true "
                             "(CF's default is false; the harness's routers model the default)",
                             "set router.enable_proxy: true on the routers, or remove 'proxy_protocol on;'", port))
    else:
        found.append(Finding(Outcome.LB_IP_AS_CLIENT, ("xff",), (_where(proxy or listen),),
                             "TCP mode (stream) without 'proxy_protocol on': the routers see the LB's address as "
                             "the client's", "proxy_protocol on; with router.enable_proxy: true on the routers", port))
    found += _idle_finding(idle, idle_where, "proxy_timeout", port, "proxy_timeout 1h; (in the stream server)")
    return ParsedListener(port, "tcp", tls, ports, "v1" if proxy_v1 else "none", False, idle, idle_where,
                          _where(listen)), found
