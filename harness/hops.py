"""Where on the path an attempt broke: the witness's evidence of one attempt, hop by hop.

``trace(evidence)`` turns one attempt's ``Evidence`` (the client's result, the routers' records, the
Traffic Controller's events, all bound to the attempt id) into four hops a person can read: what
the client sent, what the LB passed to a router (Upgrade? X-Forwarded-For? PROXY bytes?), what the
backend (Traffic Controller or app) answered, and how the stream ended (who closed, which code).
Each hop is ``ok`` (True), ``broken`` (False) or not reached (None); hops after the first broken
one are not reached. Pure data, stored in the verdict record and drawn by ``harness.diagrams``.
"""

from __future__ import annotations

from typing import Any

from harness.protocol.headers import get
from harness.witness import Evidence

HOPS = ("client → LB", "LB → router", "router → backend", "stream end")
#: Client error kinds that mean the LB never got the request (``harness.cf.client`` error_kind values).
BEFORE_LB = ("discovery", "dns", "connect_refused", "connect_timeout", "connect_error")


def _hop(name: str, ok: bool | None, *facts: str) -> dict[str, Any]:
    return {"hop": name, "ok": ok, "facts": [f for f in facts if f]}


def _kind(ev: Evidence) -> str | None:
    return ev.outcome.get("error_kind") or ev.client.get("error_kind")


def _client_hop(ev: Evidence) -> dict[str, Any]:
    target = ev.client.get("endpoint") or ev.client.get("url") or ev.outcome.get("url") or ""
    kind = _kind(ev)
    if kind in BEFORE_LB:
        error = str(ev.outcome.get("error") or ev.client.get("error") or kind)
        return _hop(HOPS[0], False, f"to {target}" if target else "", f"{kind}: {error[:120]}")
    reached = bool(ev.routers)
    return _hop(HOPS[0], True if reached else None, f"to {target}" if target else "", f"attempt {ev.attempt}")


def _router_hop(ev: Evidence, websocket: bool) -> dict[str, Any]:
    records = ev.stream_requests() or list(ev.routers)
    if not records:
        return _hop(HOPS[1], None, "no router saw this attempt")
    rec = records[-1]
    facts = [f"{rec.get('router')} got it"]
    hop = _router_facts(rec, facts, websocket)
    hop["node"] = rec.get("router")  # which router the diagram colours
    return hop


def _router_facts(rec: dict[str, Any], facts: list[str], websocket: bool) -> dict[str, Any]:
    if rec.get("proxy_v2_signature"):
        return _hop(HOPS[1], False, *facts, "bytes began with the PROXY v2 signature",
                    f"router answered {rec.get('status')}")
    if rec.get("proxy_v1_line") and rec.get("path") is None:
        return _hop(HOPS[1], False, *facts, "bytes began with a PROXY v1 line the router does not read",
                    f"router answered {rec.get('status')}")
    if rec.get("bad_request"):
        return _hop(HOPS[1], False, *facts, f"unparseable: {str(rec['bad_request'])[:80]}")
    headers = [tuple(h) for h in rec.get("headers") or []]
    proxy = rec.get("proxy_protocol") or {}
    facts += [f"PROXY v1 from {proxy.get('source_ip')}" if proxy else "",
              f"X-Forwarded-For: {get(headers, 'X-Forwarded-For')}" if get(headers, "X-Forwarded-For") else
              f"no X-Forwarded-For (peer {rec.get('peer')})"]
    if websocket:
        if not rec.get("upgrade"):
            return _hop(HOPS[1], False, *facts, "Upgrade missing: a plain GET")
        facts.append("Upgrade: websocket")
    return _hop(HOPS[1], True, *facts)


def _backend_hop(ev: Evidence, websocket: bool) -> dict[str, Any]:
    statuses = [r.get("status") for r in ev.stream_requests() if r.get("status") is not None]
    status = statuses[-1] if statuses else None
    for name in ("handshake_rejected", "denied", "subscribe_failed"):
        if found := ev.tc_events(name):
            return _hop(HOPS[2], False, f"TC {name.replace('_', ' ')}: {found[0].get('status') or ''} "
                                        f"{found[0].get('reason') or found[0].get('error') or ''}".strip())
    if ev.tc_events("stream_open"):
        return _hop(HOPS[2], True, "TC answered 101, stream open")
    if status is None:
        return _hop(HOPS[2], None)
    wanted = 101 if websocket else 200
    return _hop(HOPS[2], status == wanted, f"backend answered {status}")


def _end_hop(ev: Evidence) -> dict[str, Any]:
    out, delivery = ev.outcome, ev.client.get("delivery") or {}
    closed = ev.tc_events("stream_closed")
    tc = f"TC: closed by {closed[0].get('closed_by')} ({closed[0].get('close_code')})" if closed else ""
    got = f"{delivery.get('unique')}/{delivery.get('expected')} envelopes" if delivery.get("expected") else ""
    client = f"client: closed by {out.get('closed_by')} ({out.get('close_code')})" if out.get("closed_by") else ""
    keepalive = "TC keepalive timeout (1008)" if ev.tc_events("keepalive_timeout") else ""
    if not out.get("closed_by") and not delivery.get("expected"):  # a crafted client: it only hangs up
        return _hop(HOPS[3], None, tc)
    # Broken: envelopes lost, the client cut, the TC's keepalive gave up, or the TC lost a stream the
    # client still held (half-open).
    lost = (bool(delivery.get("lost")) or out.get("closed_by") == "server" or bool(keepalive)
            or bool(closed and closed[0].get("closed_by") == "lost"))
    return _hop(HOPS[3], not lost, got, client, tc, keepalive)


def trace(ev: Evidence) -> list[dict[str, Any]]:
    """The attempt's four hops; after the first broken one, the rest are not reached (None)."""
    websocket = bool(ev.client.get("endpoint")) or "outcome" in ev.client
    hops = [_client_hop(ev), _router_hop(ev, websocket), _backend_hop(ev, websocket)]
    if websocket:
        hops.append(_end_hop(ev) if ev.tc_events("stream_open") else _hop(HOPS[3], None))
    broken = next((i for i, h in enumerate(hops) if h["ok"] is False), None)
    if broken is not None:
        for hop in hops[broken + 1:]:
            hop["ok"] = None
    return hops


def broken_at(hops: list[dict[str, Any]] | None) -> str | None:
    """The name of the first broken hop, None when none broke (or nothing was traced)."""
    return next((h["hop"] for h in hops or [] if h.get("ok") is False), None)
