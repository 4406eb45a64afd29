"""The qualification report: the matrix of cells x checks, expected vs observed, with diagnoses.

Written from the records scenario tests attach (``verdict`` fixture, or the plugin for a check that
errored or skipped before recording) as ``report.json``, ``report.md`` and ``report.html`` in the
run's results folder, from the Jinja2 templates in ``harness/templates``: the answer first
(``harness.answer``, one verdict per LB and seed strategy, checks named from ``harness/checks.yaml``),
then what disagrees with the prediction, then per cell a Graphviz diagram coloured from the
attempt's hops (``harness.hops``, ``harness.diagrams``) and the checks. ``report.json`` follows
``harness/schemas/report.schema.json``. Formatting only; no Docker.

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

import json
import os
import platform
import time
from collections import Counter, defaultdict
from enum import Enum
from pathlib import Path
from typing import Any

import jinja2

from harness import answer, checks, diagrams, hops, timeline_chart
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


def _measured_lines(cells: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for cell_id, cell in cells.items():
        for rec in cell["checks"].values():
            if rec["check"].startswith(MEASURED):
                details = json.dumps(_measured(rec.get("details") or {}), default=str)
                out.append(f"- **{cell_id} / {rec['check']}**: {cell_value(rec)}; {details[:400]}")
    return out


MEASURED = ("fault_", "kernel_", "router_", "crafted_", "on_wire", "idle")


def _measured(details: dict[str, Any]) -> dict[str, Any]:
    """The figures a reader wants, without the bulky client outcome."""
    return {k: v for k, v in details.items() if k not in ("outcome", "client_outcome", "delivery", "timeline")}


# ---- report.html / report.md: Jinja2 templates (harness/templates) over one view of the run ---------

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Schema of report.json (``harness/schemas/report.schema.json``); bump on an incompatible change.
SCHEMA_VERSION = "1.1"
SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "report.schema.json"
#: The check whose attempt a cell's diagram shows: the log stream, else the first traced check.
DIAGRAM_CHECKS = ("logs", "firehose", "on_wire")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=False, lstrip_blocks=False)
    env.filters["md"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    return env


def latency_bars(cell: dict[str, Any]) -> list[tuple[str, float]]:
    """Delivery latency percentiles a cell measured (its log stream, the latency fault), in ms."""
    bars: list[tuple[str, float]] = []
    for check, rec in cell["checks"].items():
        details = rec.get("details") or {}
        delivery = details.get("delivery") or {}
        for label, value in (("p50", delivery.get("latency_ms_p50")), ("p99", delivery.get("latency_ms_p99")),
                             ("p50", details.get("p50_ms")), ("p99", details.get("p99_ms"))):
            if isinstance(value, (int, float)):
                bars.append((f"{check} {label}", float(value)))
    return bars[:8]


def gap_strips(cell: dict[str, Any], catalog: checks.Catalog) -> list[dict[str, Any]]:
    """Fault and failover checks that measured a delivery gap: the lost sequence ranges, their
    length in ms and the re-dials (what the recorded details hold; no per-envelope arrival times)."""
    strips = []
    for check, rec in cell["checks"].items():
        details = rec.get("details") or {}
        ranges = [r for r in details.get("gap") or [] if isinstance(r, (list, tuple)) and len(r) == 2]
        if not ranges:
            continue
        top = max(int(r[1]) for r in ranges)
        strips.append({"check": check, "title": catalog.check(check).title, "ranges": ranges,
                       "domain": max(top + 1, int(top * 1.25)), "gap_ms": details.get("gap_ms"),
                       "redials": details.get("redials"), "lost": sum(int(b) - int(a) + 1 for a, b in ranges)})
    return strips


def timelines(cell: dict[str, Any], catalog: checks.Catalog) -> list[dict[str, Any]]:
    """Fault and failover checks that recorded the attempt's delivery timeline (details ``timeline``,
    ``harness.timeline_chart.detail``): chart geometry per check."""
    out = []
    for check, rec in cell["checks"].items():
        recorded = (rec.get("details") or {}).get("timeline")
        if isinstance(recorded, dict) and recorded.get("points"):
            out.append(timeline_chart.view(recorded, check, catalog.check(check).title))
    return out


def _timeline_lines(view: dict[str, dict[str, Any]]) -> list[str]:
    return [f"- **{cell_id} / {t['check']}**: {t['line']}" for cell_id, cell in view.items() for t in cell["timelines"]]


def _traced(cell: dict[str, Any]) -> list[dict[str, Any]] | None:
    recs = cell["checks"]
    for check in (*DIAGRAM_CHECKS, *recs):
        if check in recs and recs[check].get("hops"):
            return list(recs[check]["hops"])
    return None


def _view(cells: dict[str, dict[str, Any]], topologies: dict[str, Topology], catalog: checks.Catalog,
          lb_versions: dict[str, str], *, draw: bool) -> dict[str, dict[str, Any]]:
    """Per cell what the templates show: rows named for people, the coloured diagram, charts."""
    view: dict[str, dict[str, Any]] = {}
    for cell_id, cell in cells.items():
        rows = []
        for check in columns({cell_id: cell}):
            rec = cell["checks"][check]
            row = catalog.check(check)
            status = status_of(rec)
            why = rec.get("diagnosis") if status in (AS_PREDICTED, MISMATCH) else reason_of(rec)
            if rec.get("expected") and status in (AS_PREDICTED, MISMATCH):
                why = f"{why} (predicted: {rec['expected']}, because {rec.get('because')})"
            rows.append({"check": check, "title": row.title, "tests": row.tests, "status": status,
                         "value": cell_value(rec), "why": str(why or ""), "evidence": rec.get("evidence")})
        strategy, role = catalog.strategy_of(str(cell["topology"]))
        traced = _traced(cell)
        topo = topologies.get(str(cell["topology"]))
        svg = None
        if draw and topo is not None:
            bound = topo.with_driver(str(cell["driver"]))
            svg = diagrams.svg(diagrams.graph(bound, traced, lb_versions=lb_versions,
                                              drivers={lb.name: lb.driver for lb in bound.load_balancers}))
        view[cell_id] = {"topology": cell["topology"], "driver": cell["driver"], "rows": rows,
                         "checks": {r["check"]: r for r in rows},
                         "strategy_title": strategy.title if strategy else "not in a seed strategy (checks.yaml)",
                         "role": role, "svg": svg, "text_diagram": diagram(topo) if topo and not svg else "",
                         "broken_at": hops.broken_at(traced), "latency": latency_bars(cell),
                         "gaps": gap_strips(cell, catalog), "timelines": timelines(cell, catalog)}
    return view


def render(cells: dict[str, dict[str, Any]], meta: dict[str, Any], diagrams_text: dict[str, str],
           answer_data: dict[str, Any], topologies: dict[str, Topology], catalog: checks.Catalog,
           *, draw: bool = True) -> tuple[str, str]:
    """(report.html, report.md) from the templates."""
    lb_versions = {d: answer.short_version(v) for d, v in meta["environment"].get("lb_versions", {}).items()}
    view = _view(cells, topologies, catalog, lb_versions, draw=draw)
    cols = columns(cells)
    ids = list(dict.fromkeys([*cols]))
    context = {"meta": meta, "answer": answer_data, "strategies": list(catalog.strategies.values()),
               "labels": answer.LABELS, "css": CSS, "cells": view, "columns": cols,
               "catalog_rows": [{"id": i, **{k: v for k, v in catalog.check(i).__dict__.items() if k != "id"}}
                                for i in ids],
               "environment": json.dumps(meta["environment"], indent=2), "diagrams": diagrams_text,
               "why_lines": [_why_line(cid, rec) for cid, cell in cells.items() for rec in cell["checks"].values()
                             if status_of(rec) != PASS],
               "measured_lines": _measured_lines(cells), "timeline_lines": _timeline_lines(view)}
    env = _environment()
    return env.get_template("report.html.j2").render(context), env.get_template("report.md.j2").render(context)


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
          *, note: str = "", finished: str | None = None) -> list[Path]:
    """report.{json,md,html} in ``results`` (the run folder), always, even for zero records; ``note``
    says why a run has none."""
    records = [_relative_evidence(normalize(r), results) for r in records]
    cells = group(records)
    env: dict[str, Any] = {"python": platform.python_version(), "lb_versions": {}, "images": {}}
    for cell in cells.values():
        env["lb_versions"].update(cell["environment"].get("lb_versions", {}))
        env["images"].update(cell["environment"].get("images", {}))
    meta = {"finished": finished or time.strftime("%Y-%m-%d %H:%M:%S %Z"), "host": platform.node(),
            "summary": summary(records, duration_s), "counts": counts(records), "note": note,
            "duration_s": round(duration_s, 1),
            "environment": env}
    diagrams = {name: diagram(topologies[name])
                for name in sorted({c["topology"] for c in cells.values()}) if name in topologies}
    catalog = checks.default()
    answer_data = answer.answer(cells, catalog, env["lb_versions"])
    page, markdown = render(cells, meta, diagrams, answer_data, topologies, catalog)
    results.mkdir(parents=True, exist_ok=True)
    files = {
        results / "report.json": json.dumps({"schema_version": SCHEMA_VERSION, "meta": meta, "answer": answer_data,
                                             "checks": {c: catalog.check(c).__dict__ for c in columns(cells)},
                                             "records": records, "cells": cells, "diagrams": diagrams},
                                            indent=2, default=str),
        results / "report.md": markdown,
        results / "report.html": page,
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


def rerender(folder: Path, topologies: dict[str, Topology]) -> list[Path]:
    """report.{json,md,html} of a finished run written again from its report.json, in place (its
    records, duration and note kept): a run recorded before a template or catalog change."""
    path = folder / "report.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no report.json; fix: name the folder of a finished run")
    data = json.loads(path.read_text())
    return write(data["records"], folder, topologies, float(data["meta"].get("duration_s") or 0),
                 note=str(data["meta"].get("note") or ""), finished=data["meta"].get("finished"))


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.report merge DIR... [--out DIR]`` or ``render DIR``: exit 1 when the run
    fails."""
    import argparse

    from harness.topology import load_all

    parser = argparse.ArgumentParser(prog="python -m harness.report")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("merge", help="merge the reports of several runs (shards) into one")
    cmd.add_argument("folders", nargs="+", type=Path, help="run folders holding report.json")
    cmd.add_argument("--out", type=Path, default=Path("results/merged"), help="where the merged report goes")
    again = sub.add_parser("render", help="re-render a finished run's report (current templates and catalog)")
    again.add_argument("folder", type=Path, help="a run folder holding report.json")
    args = parser.parse_args(argv)
    try:
        files = merge(args.folders, args.out, load_all()) if args.command == "merge" else rerender(args.folder,
                                                                                                  load_all())
    except FileNotFoundError as exc:
        parser.error(str(exc))
    data = json.loads(files[0].read_text())
    print(data["meta"]["summary"])
    for path in files:
        print(f"report: {path}")
    return 1 if failing(data["records"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
