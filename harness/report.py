"""The qualification report: the matrix of cells x checks, expected vs observed, with diagnoses.

Written from the records scenario tests attach (``verdict`` fixture, or the plugin for a check that
errored or skipped before recording) as ``report.json``, ``report.md`` and ``report.html`` in the
run's results folder. Pure formatting; no Docker.

Every record gets one status from a closed set, and nothing is left out of the tables or the
summary line:

    pass          the check works, as predicted
    as_predicted  it fails, exactly in the way the seed predicts
    mismatch      not what the seed predicts
    error         the check could not run to its verdict (crash, cell did not start): the reason
    skipped       the test skipped (e.g. the kernel lacks a feature): the reason
    n/a           the check does not apply to this cell (observed ``not_applicable``): the reason
"""

from __future__ import annotations

import html
import json
import os
import platform
import time
from collections import Counter, defaultdict
from enum import Enum
from pathlib import Path
from typing import Any

from harness.topology import Topology

CHECK_ORDER = ["logs", "firehose", "recent_logs", "auth_401", "auth_404", "xff", "xfp", "on_wire",
               "crafted_split_handshake", "crafted_header_casing", "crafted_rst", "fault_latency", "fault_slicer",
               "fault_reset_gap", "fault_limit_data", "fault_timeout", "router_death", "kernel_loss",
               "kernel_blackhole", "kernel_partition", "kernel_reset", "kernel_bandwidth", "kernel_pause", "kernel_delay"]

PASS, AS_PREDICTED, MISMATCH = "pass", "as_predicted", "mismatch"
ERROR, SKIPPED, NOT_APPLICABLE = "error", "skipped", "n/a"
STATUSES = (PASS, AS_PREDICTED, MISMATCH, ERROR, SKIPPED, NOT_APPLICABLE)
#: Statuses that make a run fail, whether or not a pytest test failed with them.
FAILING = (MISMATCH, ERROR)
#: When two records land in one (cell, check) slot, the one a reader must not miss wins.
SEVERITY = {PASS: 0, AS_PREDICTED: 1, NOT_APPLICABLE: 2, SKIPPED: 3, MISMATCH: 4, ERROR: 5}
#: The observed outcome that means "does not apply here" (``harness.outcomes.Outcome.NOT_APPLICABLE``).
NOT_APPLICABLE_OUTCOME = "not_applicable"
#: CSS class of each status in report.html.
CSS = {PASS: "pass", AS_PREDICTED: "xfail", MISMATCH: "mismatch", ERROR: "error", SKIPPED: "skipped",
       NOT_APPLICABLE: "na"}


def plain(value: Any) -> Any:
    """An Enum's value (``Outcome`` is a ``str`` Enum), anything else as it is."""
    return value.value if isinstance(value, Enum) else value


def status_of(record: dict[str, Any]) -> str:
    """The record's status: its own when it carries one, else derived from observed/expected/ok."""
    if record.get("status") in STATUSES:
        return str(record["status"])
    if plain(record.get("observed")) == NOT_APPLICABLE_OUTCOME:
        return NOT_APPLICABLE
    if record.get("ok"):
        return PASS if plain(record.get("observed")) == PASS else AS_PREDICTED
    return MISMATCH


def normalize(record: dict[str, Any]) -> dict[str, Any]:
    """A copy with plain JSON values at the top level and ``status`` set."""
    out = {key: plain(value) for key, value in dict(record).items()}
    out["status"] = status_of(out)
    return out


def reason_of(record: dict[str, Any]) -> str:
    """Why a check errored, skipped or does not apply (``detail``), else its diagnosis."""
    return str(record.get("detail") or record.get("diagnosis") or "no reason given")


def cell_value(record: dict[str, Any]) -> str:
    """One short phrase per check, by status."""
    status = status_of(record)
    if status == PASS:
        return "pass"
    if status == AS_PREDICTED:
        return f"fails as expected: {plain(record['observed'])}"
    if status == MISMATCH:
        return f"MISMATCH (expected {plain(record['expected'])}, saw {plain(record['observed'])})"
    label = {ERROR: "ERROR", SKIPPED: "skipped", NOT_APPLICABLE: "n/a"}[status]
    return f"{label}: {reason_of(record)}"


def counts(records: list[dict[str, Any]]) -> dict[str, int]:
    found = Counter(status_of(r) for r in records)
    return {status: found[status] for status in STATUSES}


def failing(records: list[dict[str, Any]]) -> bool:
    """Any mismatch or error: the run must exit non-zero."""
    return any(status_of(r) in FAILING for r in records)


def summary(records: list[dict[str, Any]], duration_s: float) -> str:
    """``N cells, M checks: P pass, X fail as predicted, K mismatch, E error, S skipped, A n/a, T s``."""
    n = counts(records)
    return (f"{len(group(records))} cells, {len(records)} checks: {n[PASS]} pass, {n[AS_PREDICTED]} fail as "
            f"predicted, {n[MISMATCH]} mismatch, {n[ERROR]} error, {n[SKIPPED]} skipped, {n[NOT_APPLICABLE]} n/a, "
            f"{duration_s:.0f} s")


def group(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    cells: dict[str, dict[str, Any]] = defaultdict(lambda: {"checks": {}})
    for rec in records:
        cell = cells[rec["cell"]]
        cell.update(topology=rec["topology"], driver=rec["driver"])
        if rec.get("environment"):
            cell["environment"] = rec["environment"]
        cell.setdefault("environment", {})
        held = cell["checks"].get(rec["check"])
        if held is None or SEVERITY[status_of(rec)] >= SEVERITY[status_of(held)]:
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


def _why_line(cell_id: str, rec: dict[str, Any]) -> str:
    status = status_of(rec)
    ev = f" (evidence: {rec['evidence']})" if rec.get("evidence") else ""
    expected = f" Expected: {rec['expected']} because {rec['because']}." if rec.get("expected") else ""
    if status in (AS_PREDICTED, MISMATCH):
        return f"- **{cell_id} / {rec['check']}**: {rec['diagnosis']}.{expected}{ev}"
    return f"- **{cell_id} / {rec['check']}**: {cell_value(rec)}.{expected}{ev}"


def to_markdown(cells: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    cols = columns(cells)
    out = ["# CF WebSocket load-balancer qualification", "",
           f"Run {meta['finished']} on {meta['host']}; {meta['summary']}.", ""]
    if meta.get("note"):
        out += [f"**{meta['note']}**", ""]
    if cells:
        out += ["| topology | LB | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]
        for cell in cells.values():
            values = [cell_value(cell["checks"][c]).replace("|", "\\|") if c in cell["checks"] else "" for c in cols]
            out.append(f"| {cell['topology']} | {cell['driver']} | " + " | ".join(values) + " |")
    out += ["", "## Why each failure happens", ""]
    for cell_id, cell in cells.items():
        out += [_why_line(cell_id, rec) for rec in cell["checks"].values() if status_of(rec) != PASS]
    out += ["", "## Fault and wire measurements", "",
            "Faults, kernel impairments, crafted traffic and on-wire checks, with what was measured.", ""]
    for cell_id, cell in cells.items():
        for rec in cell["checks"].values():
            if rec["check"].startswith(MEASURED):
                details = json.dumps(_measured(rec.get("details") or {}), default=str)
                out.append(f"- **{cell_id} / {rec['check']}**: {cell_value(rec)}; {details[:400]}")
    out += _client_kinds(cols)
    out += ["", "## Environment", "", "```", json.dumps(meta["environment"], indent=2), "```", ""]
    return "\n".join(out)


def _client_kinds(cols: list[str]) -> list[str]:
    """Which kind of log client each log-path column stands for, and on which foundation profile."""
    from harness.profiles import CLIENT_KINDS

    kinds = [k for k in CLIENT_KINDS if k.check in cols]
    if not kinds:
        return []
    return ["", "## Log clients (foundation profiles: classic = the seed's, current = today's)", "",
            *(f"- **{k.check}**: {k.title}; profile {', '.join(k.profiles)}" for k in kinds)]


MEASURED = ("fault_", "kernel_", "router_", "crafted_", "on_wire", "idle")


def _measured(details: dict[str, Any]) -> dict[str, Any]:
    """The figures a reader wants, without the bulky client outcome."""
    return {k: v for k, v in details.items() if k not in ("outcome", "client_outcome", "delivery")}


def to_html(cells: dict[str, dict[str, Any]], meta: dict[str, Any], diagrams: dict[str, str]) -> str:
    cols = columns(cells)
    rows = []
    for cell in cells.values():
        tds = []
        for col in cols:
            rec = cell["checks"].get(col)
            if rec is None:
                tds.append("<td></td>")
                continue
            status = status_of(rec)
            title = rec.get("diagnosis") if status in (AS_PREDICTED, MISMATCH) else reason_of(rec)
            link = f' <a href="{html.escape(rec["evidence"])}">evidence</a>' if rec.get("evidence") else ""
            tds.append(f'<td class="{CSS[status]}" title="{html.escape(str(title or ""))}">'
                       f"{html.escape(cell_value(rec))}{link}</td>")
        rows.append(f"<tr><th>{html.escape(cell['topology'])}</th><td>{html.escape(cell['driver'])}</td>"
                    + "".join(tds) + "</tr>")
    figs = "".join(f"<h3>{html.escape(name)}</h3><pre>{html.escape(text)}</pre>" for name, text in diagrams.items())
    note = f"<p><strong>{html.escape(meta['note'])}</strong></p>" if meta.get("note") else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>CF WebSocket LB qualification</title>
<style>body{{font-family:sans-serif}} td,th{{border:1px solid #ccc;padding:4px;font-size:13px}}
table{{border-collapse:collapse}} .pass{{background:#d9f2d9}} .xfail{{background:#fff2cc}}
.mismatch{{background:#f4cccc;font-weight:bold}} .error{{background:#e6b8e6;font-weight:bold}}
.skipped{{background:#e6e6e6}} .na{{background:#f5f5f5;color:#666}}</style></head><body>
<h1>CF WebSocket load-balancer qualification</h1><p>{html.escape(meta['summary'])} &mdash; {meta['finished']}</p>
{note}<p>Green: works. Yellow: fails exactly as the seed predicts (hover for why). Red: not what the seed predicts.
Purple: the check could not run (error). Grey: skipped, or not applicable to the cell (with the reason).</p>
<table><tr><th>topology</th><th>LB</th>{''.join(f'<th>{html.escape(c)}</th>' for c in cols)}</tr>{''.join(rows)}</table>
<h2>Topologies</h2>{figs}<h2>Environment</h2><pre>{html.escape(json.dumps(meta['environment'], indent=2))}</pre>
</body></html>"""


CORE = ("logs", "firehose", "recent_logs", "auth_401", "auth_404", "xff", "xfp")
#: One word per status in the terminal matrix.
TERMINAL = {PASS: "pass", MISMATCH: "MISMATCH", ERROR: "ERROR", SKIPPED: "skip", NOT_APPLICABLE: "n/a"}


def _table(cells: dict[str, dict[str, Any]], cols: list[str]) -> list[str]:
    header = ["topology", "LB", *cols]
    table = [header]
    for cell in cells.values():
        if not any(col in cell["checks"] for col in cols):
            continue
        row = [cell["topology"], cell["driver"]]
        for col in cols:
            rec = cell["checks"].get(col)
            status = None if rec is None else status_of(rec)
            row.append("-" if rec is None else "x:" + str(plain(rec["observed"])) if status == AS_PREDICTED
                       else TERMINAL[str(status)])
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
    return "\n".join(lines) + ("(x:<outcome> = fails exactly as predicted; MISMATCH = not as predicted; "
                               "ERROR/skip/n/a: see the report for the reason)")


def _relative_evidence(record: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Evidence links relative to the report's folder, so the run folder can be moved or served."""
    evidence = record.get("evidence")
    if evidence and os.path.isabs(evidence):
        record = {**record, "evidence": Path(os.path.relpath(evidence, folder)).as_posix()}
    return record


def write(records: list[dict[str, Any]], results: Path, topologies: dict[str, Topology], duration_s: float,
          *, note: str = "") -> list[Path]:
    """report.{json,md,html} in ``results`` (the run folder), always, even for zero records; ``note``
    says why a run has none."""
    records = [_relative_evidence(normalize(r), results) for r in records]
    cells = group(records)
    env: dict[str, Any] = {"python": platform.python_version(), "lb_versions": {}, "images": {}}
    for cell in cells.values():
        env["lb_versions"].update(cell["environment"].get("lb_versions", {}))
        env["images"].update(cell["environment"].get("images", {}))
    meta = {"finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "host": platform.node(),
            "summary": summary(records, duration_s), "counts": counts(records), "note": note,
            "duration_s": round(duration_s, 1),
            "environment": env}
    diagrams = {name: diagram(topologies[name])
                for name in sorted({c["topology"] for c in cells.values()}) if name in topologies}
    results.mkdir(parents=True, exist_ok=True)
    files = {
        results / "report.json": json.dumps({"meta": meta, "records": records, "cells": cells, "diagrams": diagrams},
                                            indent=2, default=str),
        results / "report.md": to_markdown(cells, meta) + "\n## Topologies\n\n" + "\n\n".join(
            f"### {n}\n```\n{d}\n```" for n, d in diagrams.items()) + "\n",
        results / "report.html": to_html(cells, meta, diagrams),
    }
    for path, text in files.items():
        path.write_text(text)
    return list(files)


# ---- merging the reports of shards (``--shard K/N`` on N CI runners) ---------------------------------


def merge(folders: list[Path], out: Path, topologies: dict[str, Topology]) -> list[Path]:
    """One report from the run folders of several shards: every record of each, evidence links
    re-pointed from ``out``, duration the longest shard's (shards run side by side)."""
    records: list[dict[str, Any]] = []
    durations: list[float] = []
    for folder in folders:
        path = folder / "report.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no report.json; fix: name run folders (results/runs/<id> or "
                                    "results/latest) of finished runs")
        data = json.loads(path.read_text())
        durations.append(float(data["meta"].get("duration_s") or 0))
        for record in data["records"]:
            if record.get("evidence") and not os.path.isabs(record["evidence"]):
                record = {**record, "evidence": str((folder / record["evidence"]).resolve())}
            records.append(record)
    return write(records, out, topologies, max(durations, default=0.0),
                 note=f"merged from {len(folders)} runs: " + ", ".join(str(f) for f in folders))


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.report merge DIR... [--out DIR]``: exit 1 when the merged run fails."""
    import argparse

    from harness.topology import load_all

    parser = argparse.ArgumentParser(prog="python -m harness.report")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("merge", help="merge the reports of several runs (shards) into one")
    cmd.add_argument("folders", nargs="+", type=Path, help="run folders holding report.json")
    cmd.add_argument("--out", type=Path, default=Path("results/merged"), help="where the merged report goes")
    args = parser.parse_args(argv)
    try:
        files = merge(args.folders, args.out, load_all())
    except FileNotFoundError as exc:
        parser.error(str(exc))
    data = json.loads(files[0].read_text())
    print(data["meta"]["summary"])
    for path in files:
        print(f"report: {path}")
    return 1 if failing(data["records"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
