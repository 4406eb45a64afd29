"""The qualification report: the matrix of cells x checks, expected vs observed, with diagnoses.

Written from the records scenario tests attach (``verdict`` fixture) as ``report.json``,
``report.md`` and ``report.html`` under the results folder. Pure formatting; no Docker.
"""

from __future__ import annotations

import html
import json
import platform
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.topology import Topology

CHECK_ORDER = ["logs", "firehose", "recent_logs", "auth_401", "auth_404", "xff", "xfp", "on_wire",
               "crafted_split_handshake", "crafted_header_casing", "crafted_rst", "fault_latency", "fault_slicer",
               "fault_reset_gap", "fault_limit_data", "fault_timeout", "router_death", "kernel_loss",
               "kernel_blackhole", "kernel_partition", "kernel_reset", "kernel_bandwidth", "kernel_pause", "kernel_delay"]


def cell_value(record: dict[str, Any]) -> str:
    """One word per check: pass, 'fails as expected: <outcome>', or MISMATCH."""
    if not record["ok"]:
        return f"MISMATCH (expected {record['expected']}, saw {record['observed']})"
    return "pass" if record["observed"] == "pass" else f"fails as expected: {record['observed']}"


def group(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    cells: dict[str, dict[str, Any]] = defaultdict(lambda: {"checks": {}})
    for rec in records:
        cell = cells[rec["cell"]]
        cell.update(topology=rec["topology"], driver=rec["driver"], environment=rec.get("environment", {}))
        cell["checks"][rec["check"]] = rec
    return dict(sorted(cells.items()))


def diagram(topo: Topology) -> str:
    """A few lines a person can read: who resolves where, which listeners, what is behind."""
    lines = []
    for lb in topo.load_balancers:
        names = [topo.fqdn(label) for label, target in topo.dns.items() if target == lb.name]
        listeners = ", ".join(f"{lst.port}/{lst.protocol}{'+tls' if lst.tls else ''}->{lst.backend_port}"
                              for lst in lb.listeners)
        proxy = f", PROXY {lb.proxy_protocol}" if lb.proxy_protocol != "none" else ""
        lines.append(f"client --({', '.join(names)})--> {lb.name} [{lb.driver}: {listeners}{proxy}]")
    routers = f"router-0..{topo.router_count - 1}" + (" (enable_proxy)" if topo.router_proxy_protocol else "")
    lines.append(f"  --> {routers} --> traffic controller <-- doppler <-- app (emitter)")
    lines.append(f"  /v2/info advertises {topo.logger_scheme}://{topo.fqdn('doppler')}:{topo.logger_port}")
    return "\n".join(lines)


def columns(cells: dict[str, dict[str, Any]]) -> list[str]:
    present = {check for cell in cells.values() for check in cell["checks"]}
    return [c for c in CHECK_ORDER if c in present] + sorted(present - set(CHECK_ORDER))


def to_markdown(cells: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    cols = columns(cells)
    out = ["# CF WebSocket load-balancer qualification", "",
           f"Run {meta['finished']} on {meta['host']}; {meta['summary']}.", "",
           "| topology | LB | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]
    for cell in cells.values():
        values = [cell_value(cell["checks"][c]) if c in cell["checks"] else "" for c in cols]
        out.append(f"| {cell['topology']} | {cell['driver']} | " + " | ".join(values) + " |")
    out += ["", "## Why each failure happens", ""]
    for cell_id, cell in cells.items():
        for rec in cell["checks"].values():
            if rec["observed"] != "pass" or not rec["ok"]:
                ev = f" (evidence: {rec['evidence']})" if rec.get("evidence") else ""
                out.append(f"- **{cell_id} / {rec['check']}**: {rec['diagnosis']}. Expected: {rec['expected']} "
                           f"because {rec['because']}.{ev}")
    out += ["", "## Fault and wire measurements", "",
            "Faults, kernel impairments, crafted traffic and on-wire checks, with what was measured.", ""]
    for cell_id, cell in cells.items():
        for rec in cell["checks"].values():
            if rec["check"].startswith(MEASURED):
                details = json.dumps(_measured(rec.get("details", {})), default=str)
                out.append(f"- **{cell_id} / {rec['check']}**: {cell_value(rec)}; {details[:400]}")
    out += ["", "## Environment", "", "```", json.dumps(meta["environment"], indent=2), "```", ""]
    return "\n".join(out)


MEASURED = ("fault_", "kernel_", "router_", "crafted_", "on_wire", "idle")


def _measured(details: dict[str, Any]) -> dict[str, Any]:
    """The figures a reader wants, without the bulky client outcome."""
    return {k: v for k, v in details.items() if k not in ("outcome", "client_outcome", "delivery")}


def to_html(cells: dict[str, dict[str, Any]], meta: dict[str, Any], diagrams: dict[str, str]) -> str:
    cols = columns(cells)
    rows = []
    for cell_id, cell in cells.items():
        tds = []
        for col in cols:
            rec = cell["checks"].get(col)
            if rec is None:
                tds.append("<td></td>")
                continue
            cls = "mismatch" if not rec["ok"] else ("pass" if rec["observed"] == "pass" else "xfail")
            link = f' <a href="{html.escape(rec["evidence"])}">evidence</a>' if rec.get("evidence") else ""
            tds.append(f'<td class="{cls}" title="{html.escape(rec["diagnosis"])}">'
                       f"{html.escape(cell_value(rec))}{link}</td>")
        rows.append(f"<tr><th>{html.escape(cell['topology'])}</th><td>{html.escape(cell['driver'])}</td>"
                    + "".join(tds) + "</tr>")
    figs = "".join(f"<h3>{html.escape(name)}</h3><pre>{html.escape(text)}</pre>" for name, text in diagrams.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>CF WebSocket LB qualification</title>
<style>body{{font-family:sans-serif}} td,th{{border:1px solid #ccc;padding:4px;font-size:13px}}
table{{border-collapse:collapse}} .pass{{background:#d9f2d9}} .xfail{{background:#fff2cc}}
.mismatch{{background:#f4cccc;font-weight:bold}}</style></head><body>
<h1>CF WebSocket load-balancer qualification</h1><p>{html.escape(meta['summary'])} &mdash; {meta['finished']}</p>
<p>Green: works. Yellow: fails exactly as the seed predicts (hover for why). Red: not what the seed predicts.</p>
<table><tr><th>topology</th><th>LB</th>{''.join(f'<th>{c}</th>' for c in cols)}</tr>{''.join(rows)}</table>
<h2>Topologies</h2>{figs}<h2>Environment</h2><pre>{html.escape(json.dumps(meta['environment'], indent=2))}</pre>
</body></html>"""


CORE = ("logs", "firehose", "recent_logs", "auth_401", "auth_404", "xff", "xfp")


def _table(cells: dict[str, dict[str, Any]], cols: list[str]) -> list[str]:
    header = ["topology", "LB", *cols]
    table = [header]
    for cell in cells.values():
        if not any(col in cell["checks"] for col in cols):
            continue
        row = [cell["topology"], cell["driver"]]
        for col in cols:
            rec = cell["checks"].get(col)
            row.append("-" if rec is None else "MISMATCH" if not rec["ok"] else
                       "pass" if rec["observed"] == "pass" else "x:" + rec["observed"])
        table.append(row)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in table]


def to_terminal(cells: dict[str, dict[str, Any]]) -> str:
    """The seed matrix, then the fault/wire matrix (only the columns that ran)."""
    cols = columns(cells)
    core = [c for c in cols if c in CORE]
    rest = [c for c in cols if c not in CORE]
    lines = []
    if core:
        lines += ["Seed strategies x LB:", *_table(cells, core), ""]
    if rest:
        lines += ["Faults, kernel impairments, crafted traffic, on-wire checks x LB:", *_table(cells, rest), ""]
    return "\n".join(lines) + "(x:<outcome> = fails exactly as predicted; MISMATCH = not as predicted)"


def write(records: list[dict[str, Any]], results: Path, topologies: dict[str, Topology], duration_s: float) -> list[Path]:
    cells = group(records)
    bad = sum(1 for r in records if not r["ok"])
    env: dict[str, Any] = {"python": platform.python_version(), "lb_versions": {}, "images": {}}
    for cell in cells.values():
        env["lb_versions"].update(cell["environment"].get("lb_versions", {}))
        env["images"].update(cell["environment"].get("images", {}))
    meta = {"finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "host": platform.node(),
            "summary": f"{len(cells)} cells, {len(records)} checks, {bad} not as predicted, {duration_s:.0f} s",
            "environment": env}
    diagrams = {name: diagram(topologies[name]) for name in sorted({c["topology"] for c in cells.values()})}
    results.mkdir(parents=True, exist_ok=True)
    files = {
        results / "report.json": json.dumps({"meta": meta, "cells": cells, "diagrams": diagrams}, indent=2, default=str),
        results / "report.md": to_markdown(cells, meta) + "\n## Topologies\n\n" + "\n\n".join(
            f"### {n}\n```\n{d}\n```" for n, d in diagrams.items()) + "\n",
        results / "report.html": to_html(cells, meta, diagrams),
    }
    for path, text in files.items():
        path.write_text(text)
    return list(files)
