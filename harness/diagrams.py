"""Topology diagrams (Graphviz) with each hop coloured from one attempt's evidence.

The graph comes from the topology data (LBs, listeners, DNS, routers, Traffic Controller, Doppler);
the colours and edge labels come from the hops ``harness.hops.trace`` recorded for the cell's
stream check: green = the hop carried the attempt, red = it broke there, grey = not reached or not
traced. ``svg`` returns inline SVG for report.html; without Graphviz's ``dot`` it returns None and
the report shows the text diagram instead (``ci/setup`` installs Debian's graphviz).
"""

from __future__ import annotations

import re
from typing import Any

import graphviz

from harness.topology import Topology

OK, BROKEN, UNKNOWN = "#2e7d32", "#c62828", "#9e9e9e"


def colour(ok: bool | None) -> str:
    return OK if ok is True else BROKEN if ok is False else UNKNOWN


def _label(facts: list[str], width: int = 48) -> str:
    return "\n".join(f if len(f) <= width else f[:width - 1] + "…" for f in facts[:4])


def graph(topo: Topology, hops: list[dict[str, Any]] | None = None, *, lb_versions: dict[str, str] | None = None,
          drivers: dict[str, str] | None = None) -> graphviz.Digraph:
    """The cell as a left-to-right graph; ``hops`` (four, from ``harness.hops``) colour the path of
    the traced attempt: client -> the doppler LB -> the router that got it -> TC, and back."""
    hop = {h["hop"]: h for h in hops or []}
    first, second, third, end = (hop.get(n, {}) for n in ("client → LB", "LB → router", "router → backend",
                                                          "stream end"))
    dot = graphviz.Digraph(topo.name, graph_attr={"rankdir": "LR", "fontname": "Helvetica", "fontsize": "10",
                                                  "bgcolor": "transparent", "nodesep": "0.25", "ranksep": "0.5"},
                           node_attr={"shape": "box", "style": "rounded", "fontname": "Helvetica", "fontsize": "10"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "8", "color": UNKNOWN})
    dot.node("client", "client\n(cf CLI / nozzle)")
    ws_lb = topo.dns.get("doppler", topo.dns.get("default"))
    for lb in topo.load_balancers:
        listeners = " ".join(f"{x.port}/{x.protocol}{'+tls' if x.tls else ''}" for x in lb.listeners)
        proxy = f"\nPROXY {lb.proxy_protocol}" if lb.proxy_protocol != "none" else ""
        driver = (drivers or {}).get(lb.name, lb.driver)
        version = (lb_versions or {}).get(driver, "")
        dot.node(f"lb_{lb.name}", f"{lb.name}: {driver} {version}\n{listeners}{proxy}")
        names = ", ".join(label for label, target in topo.dns.items() if target == lb.name)
        traced = lb.name == ws_lb and bool(first)
        label = f"{names}\n{_label(first.get('facts', []))}" if traced else names
        dot.edge("client", f"lb_{lb.name}", label=label, color=colour(first.get("ok")) if traced else UNKNOWN,
                 penwidth="2.5" if traced else "1")
    said = (second.get("facts") or [""])[0]  # records made before hops carried "node": "router-1 got it"
    router = second.get("node") or (said.removesuffix(" got it") if said.endswith(" got it") else None)
    for i in range(topo.router_count):
        name = f"router-{i}"
        dot.node(name, name + (" (enable_proxy)" if topo.router_proxy_protocol else ""))
        for lb in topo.load_balancers:
            traced = lb.name == ws_lb and name == router
            dot.edge(f"lb_{lb.name}", name, label=_label(second.get("facts", [])[1:]) if traced else "",
                     color=colour(second.get("ok")) if traced else UNKNOWN, penwidth="2.5" if traced else "1")
        traced = name == router
        dot.edge(name, "tc", label=_label(third.get("facts", [])) if traced else "",
                 color=colour(third.get("ok")) if traced else UNKNOWN, penwidth="2.5" if traced else "1")
    dot.node("tc", "Traffic Controller\n/apps/{guid}/stream\n/firehose/{id}")
    dot.node("doppler", "Doppler ← app")
    dot.edge("doppler", "tc")
    if end and (end.get("facts") or end.get("ok") is not None):
        dot.edge("tc", "client", label=_label(end.get("facts", [])), color=colour(end.get("ok")), style="dashed",
                 constraint="false", penwidth="2")
    return dot


def svg(dot: graphviz.Digraph) -> str | None:
    """Inline SVG (no XML prolog or DOCTYPE), or None when Graphviz's ``dot`` is not installed."""
    try:
        text = dot.pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        return None
    return re.sub(r"^.*?(?=<svg)", "", text, flags=re.S)
