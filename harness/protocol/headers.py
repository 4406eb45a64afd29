"""Header rewriting done by the router stand-in and the ELB-like LB, as pure functions.

Headers are ``(name, value)`` pairs in wire order with the sender's casing, because what crossed
the wire (not a normalised dict) is what the harness asserts on.
"""

from __future__ import annotations

Headers = list[tuple[str, str]]

#: RFC 7230 6.1 hop-by-hop headers; a proxy that does not speak WebSocket drops Upgrade with them.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade"})


def get(headers: Headers, name: str) -> str | None:
    """All values of ``name`` joined with ', ' (RFC 7230 3.2.2), or None when absent."""
    values = [v for k, v in headers if k.lower() == name.lower()]
    return ", ".join(values) if values else None


def has_token(headers: Headers, name: str, token: str) -> bool:
    """Whether a comma-separated header (Connection, Upgrade) lists ``token``, case-insensitively."""
    value = get(headers, name) or ""
    return token.lower() in (t.strip().lower() for t in value.split(","))


def without(headers: Headers, *names: str) -> Headers:
    drop = {n.lower() for n in names}
    return [(k, v) for k, v in headers if k.lower() not in drop]


def replace(headers: Headers, name: str, value: str) -> Headers:
    return [*without(headers, name), (name, value)]


def is_upgrade(headers: Headers) -> bool:
    return has_token(headers, "Connection", "upgrade") and get(headers, "Upgrade") is not None


def append_forwarded_for(headers: Headers, client_ip: str) -> Headers:
    """Go's ReverseProxy appends the peer's IP to any X-Forwarded-For it received."""
    prior = get(headers, "X-Forwarded-For")
    return replace(headers, "X-Forwarded-For", f"{prior}, {client_ip}" if prior else client_ip)


def router_request(headers: Headers, *, client_ip: str, tls: bool, request_id: str, now_ms: int) -> Headers:
    """What gorouter sends to the backend (GR handlers/x_forwarded_proto.go, request_id.go, proxy.go).

    Upgrade requests keep ``Upgrade``/``Connection``; other requests lose hop-by-hop headers and
    get ``Connection: close`` because the stand-in serves one request per backend connection.
    """
    upgrade = is_upgrade(headers)
    out = headers if upgrade else [*without(headers, *HOP_BY_HOP - {"transfer-encoding"}), ("Connection", "close")]
    out = append_forwarded_for(out, client_ip)
    if get(out, "X-Forwarded-Proto") is None:
        out = [*out, ("X-Forwarded-Proto", "https" if tls else "http")]
    out = replace(out, "X-Vcap-Request-Id", request_id)
    if get(out, "X-Request-Start") is None:
        out = [*out, ("X-Request-Start", str(now_ms))]
    return without(out, "X-CF-APP-INSTANCE")


def elb_request(headers: Headers, *, client_ip: str, proto: str, port: int) -> Headers:
    """What an AWS Classic ELB HTTP listener sends to its backend.

    It does not speak WebSocket: ``Upgrade`` and ``Connection`` are hop-by-hop to it and are
    dropped, so the backend sees a plain GET. It appends X-Forwarded-For and sets
    X-Forwarded-Proto / X-Forwarded-Port to the listener's values.
    """
    out = without(headers, *HOP_BY_HOP - {"transfer-encoding"})
    out = append_forwarded_for(out, client_ip)
    out = replace(out, "X-Forwarded-Proto", proto)
    out = replace(out, "X-Forwarded-Port", str(port))
    return [*out, ("Connection", "keep-alive")]


def host_without_port(host: str | None) -> str:
    """gorouter's route lookup ignores any ``:port`` in Host."""
    if not host:
        return ""
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
