"""From a failed check to the line at fault: which findings of the customer's config explain the
outcome a check observed, and the support report that shows config, verdict, line and fix.

A finding explains a check only when it predicts exactly the observed outcome for that check on a
listener the check went through; a failure no finding explains says so, rather than guessing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.customer.model import CustomerConfig, Finding
from harness.topology import Topology

#: Checks and the hostname label + port they go through (the logger port: the advertised one).
PLAIN_80 = {"xff": ("echo", (80,)), "xfp": ("echo", (80, 443))}


def ports_of(check: str, topo: Topology) -> tuple[str, tuple[int, ...]]:
    """(hostname label, ports) a check's attempts use in ``topo``."""
    if check in PLAIN_80:
        return PLAIN_80[check]
    return "doppler", (topo.logger_port,)


def explain(config: CustomerConfig, check: str, observed: str, ports: tuple[int, ...]) -> list[Finding]:
    """The findings that predict ``observed`` for ``check`` through one of ``ports``."""
    base = check.split(":")[0].split(" ")[0]
    return [f for f in config.findings
            if observed in {o.value for o in f.outcomes} and ("*" in f.checks or base in f.checks)
            and (f.port is None or f.port in ports)]


def annotate(records: list[dict[str, Any]], configs: dict[str, CustomerConfig], topo: Topology) -> None:
    """Add ``at_fault`` (the lines and fixes) to every failing record of a customer cell."""
    lb_of = {lb.name: lb.driver for lb in topo.load_balancers}
    for rec in records:
        if rec.get("topology") != topo.name or rec.get("observed") in ("pass", "not_applicable", "", None):
            continue
        label, ports = ports_of(str(rec.get("check")), topo)
        config = configs.get(lb_of.get(topo.dns.get(label, ""), ""))
        if config is None:
            continue
        found = explain(config, str(rec.get("check")), str(rec.get("observed")), ports)
        rec["at_fault"] = list(dict.fromkeys(f.line() for f in found)) or [
            f"no line of {config.path.name} explains '{rec.get('observed')}' (see the evidence)"]


def markdown(configs: dict[str, CustomerConfig], records: list[dict[str, Any]], topo: Topology | None) -> str:
    """The support engineer's page: per config, the listeners, what the harness changed, the verdict
    of each check with the line at fault and the fix, then every finding read from the config."""
    out = ["# Customer LB config: verdicts and the lines at fault", ""]
    for driver, config in configs.items():
        out += [f"## `{config.path}` ({config.kind}, driver `{driver}`)", "", "| port | mode | TLS at LB | to router "
                "port | PROXY | idle cut (s) | from |", "|---|---|---|---|---|---|---|"]
        for lst in config.listeners:
            idle = "none" if lst.idle_timeout is None else f"{lst.idle_timeout:g}"
            src = "; ".join(map(str, lst.idle_where)) or "the LB's default"
            out.append(f"| {lst.port} | {lst.protocol} | {lst.tls} | {', '.join(map(str, lst.backend_ports)) or '-'} "
                       f"| {lst.proxy_protocol} | {idle} | {src} |")
        out += ["", "Changed by the harness: " + ("; ".join(config.rewritten) or "nothing"),
                "", "Could not be rewritten: " + ("; ".join(config.not_rewritten) or "nothing"), ""]
        mine = [r for r in records if topo and r.get("topology") == topo.name]
        if mine:
            out += ["| check | verdict | observed | expected | line at fault and fix |", "|---|---|---|---|---|"]
            for rec in mine:
                lines = "<br>".join(rec.get("at_fault") or []) or "-"
                out.append(f"| {rec.get('check')} | {rec.get('status', '')} | {rec.get('observed')} "
                           f"({rec.get('detail', '')}) | {rec.get('expected')} | {lines} |")
            out.append("")
        out += ["Findings read from the config (each names the check it breaks):", ""]
        listed = dict.fromkeys(f"- `{f.outcome.value}` ({', '.join(f.checks)}): {f.line()}" for f in config.findings)
        out += list(listed) or ["- none"]
        out.append("")
    return "\n".join(out)


def terminal_lines(records: list[dict[str, Any]], topo: Topology) -> list[str]:
    """One line per check of the customer cell: verdict, outcome, and the line at fault."""
    lines = []
    for rec in records:
        if rec.get("topology") != topo.name:
            continue
        head = f"{rec.get('status', ''):>10}  {rec.get('check')}: {rec.get('observed')}"
        lines.append(head + (f" ({rec['detail']})" if rec.get("detail") else ""))
        lines += [f"            at fault: {line}" for line in rec.get("at_fault") or []]
    return lines


def write(run_dir: Path, configs: dict[str, CustomerConfig], records: list[dict[str, Any]],
          topo: Topology | None) -> Path:
    path = run_dir / "customer.md"
    path.write_text(markdown(configs, records, topo))
    return path
