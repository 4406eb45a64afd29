"""Which fault-proxied links one attempt's traffic crossed, read from the witness alone.

A fault proxy is a TCP proxy, so the node behind it sees the fault proxy's address as its peer.
That is what the attempt's own records hold (``harness.witness.Evidence``): the routers' request
records (the peer, and the ``X-Forwarded-For`` an HTTP-mode LB added) and the Traffic Controller's
``stream_open`` event (its peer, and the peers of its Doppler connections for that stream). So
link use is known without a fault proxy's logs or metrics, and any server that speaks the
Toxiproxy API (``HARNESS_TOXIPROXY_IMAGE``) can sit on the links.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.protocol import headers
from harness.witness import Evidence

LINKS = ("client-lb", "lb-router", "router-tc", "doppler-tc")


def _xff_names(record: dict[str, object], addresses: set[str]) -> bool:
    xff = headers.get(record.get("headers") or [], "X-Forwarded-For") or ""  # type: ignore[arg-type]
    return bool({part.strip() for part in xff.split(",")} & addresses)


def links_crossed(ev: Evidence, proxy_addresses: Mapping[str, set[str]]) -> dict[str, int]:
    """Per link, how many of ``ev``'s records show the attempt crossing that link's fault proxy
    (``proxy_addresses``: link -> the addresses its fault proxies have toward the next node):
    client-lb: the XFF the LB added names the client<->LB fault proxy (HTTP-mode LBs only);
    lb-router: a router's peer is a fault proxy in front of it;
    router-tc: the Traffic Controller's peer for the stream is the router<->TC fault proxy;
    doppler-tc: one of the stream's Doppler connections goes to the Doppler<->TC fault proxy."""
    streams, opened = ev.stream_requests(), ev.tc_events("stream_open")
    found = {link: set(proxy_addresses.get(link) or ()) for link in LINKS}
    return {"client-lb": sum(_xff_names(r, found["client-lb"]) for r in streams),
            "lb-router": sum(r.get("peer") in found["lb-router"] for r in streams),
            "router-tc": sum(e.get("peer") in found["router-tc"] for e in opened),
            "doppler-tc": sum(bool(set(e.get("doppler_peers") or []) & found["doppler-tc"]) for e in opened)}
