"""The answer first: one verdict per LB under test and seed strategy, from the catalog and the records.

Pure: it reads the grouped records (``harness.report.group``) and the check catalog
(``harness.checks``), never Docker. A strategy's verdict for one LB comes from the cells of that LB
whose topology is the strategy as the seed writes it (role ``base`` in ``checks.yaml``); checks with
role ``support`` decide whether each client kind is carried at all, checks with role ``caveat`` name
what is off when it is. Verdicts are what was *observed*: whether that matched the prediction is the
next section (``against_prediction``), so a vendor reads "not supported" even where the seed
predicts it, and a support engineer reads every surprise separately.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.checks import ANY_KIND, Catalog, Strategy

SUPPORTED, CAVEAT, PARTIAL, NOT_SUPPORTED, UNKNOWN, NOT_RUN = (
    "supported", "caveat", "partial", "not_supported", "unknown", "not_run")
#: What the summary prints for each verdict.
LABELS = {SUPPORTED: "supported", CAVEAT: "supported with a caveat", PARTIAL: "partly supported",
          NOT_SUPPORTED: "not supported", UNKNOWN: "could not tell", NOT_RUN: "not run"}
RANK = {SUPPORTED: 0, CAVEAT: 1, PARTIAL: 2, UNKNOWN: 3, NOT_SUPPORTED: 4, NOT_RUN: 5}
_OK = ("pass", "not_applicable")
_UNDECIDED = ("error", "skipped")


@dataclass(frozen=True)
class KindVerdict:
    kind: str
    title: str
    verdict: str
    diagnosis: str


@dataclass(frozen=True)
class CellVerdict:
    cell: str
    topology: str
    role: str
    verdict: str
    line: str  # the one-line diagnosis
    kinds: list[KindVerdict] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StrategyVerdict:
    strategy: str
    title: str
    seed: str
    verdict: str
    line: str
    kinds: list[KindVerdict] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)  # the cells this verdict rests on (report anchors)


@dataclass(frozen=True)
class LbAnswer:
    driver: str
    version: str  # as measured in the LB's container ("" when not measured)
    version_full: str
    strategies: list[StrategyVerdict]


def short_version(full: str) -> str:
    """``HAProxy version 2.6.12-1+deb12u3 2025/10/03 - ...`` -> ``2.6.12``."""
    found = re.search(r"\d+\.\d+(?:\.\d+)?", full or "")
    return found.group(0) if found else ""


def _observed(rec: dict[str, Any]) -> str:
    return str(rec.get("observed") or "")


def _status(rec: dict[str, Any]) -> str:
    return str(rec.get("status") or "")


def judge_cell(cell_id: str, cell: dict[str, Any], catalog: Catalog, role: str = "base") -> CellVerdict:
    """One cell: per client kind, are its support checks observed to pass? Then its caveats."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    caveats: list[str] = []
    for check_id, rec in cell["checks"].items():
        row = catalog.check(check_id)
        if row.role == "support":
            by_kind.setdefault(row.client_kind, []).append(rec)
        elif row.role == "caveat" and _status(rec) not in _UNDECIDED and _observed(rec) not in _OK:
            caveats.append(row.caveat(_observed(rec), str(rec.get("diagnosis") or _observed(rec))))
    kinds = []
    for kind, recs in by_kind.items():
        failed = [r for r in recs if _status(r) not in _UNDECIDED and _observed(r) not in _OK]
        undecided = [r for r in recs if _status(r) in _UNDECIDED]
        title = catalog.client_kinds[kind].title if kind in catalog.client_kinds else kind
        if failed:
            why = str(failed[0].get("diagnosis") or _observed(failed[0]))
            kinds.append(KindVerdict(kind, title, NOT_SUPPORTED, why))
        elif undecided:
            kinds.append(KindVerdict(kind, title, UNKNOWN, f"{catalog.check(undecided[0]['check']).title}: "
                                                           f"{undecided[0].get('detail') or _status(undecided[0])}"))
        else:
            kinds.append(KindVerdict(kind, title, SUPPORTED, f"{len(recs)} checks pass"))
    order = list(catalog.client_kinds)
    kinds.sort(key=lambda k: order.index(k.kind) if k.kind in order else len(order))
    verdict, line = _combine(kinds, caveats)
    return CellVerdict(cell_id, str(cell["topology"]), role, verdict, line, kinds, caveats)


def _combine(kinds: list[KindVerdict], caveats: list[str]) -> tuple[str, str]:
    verdicts = {k.verdict for k in kinds}
    if not kinds:
        return UNKNOWN, "no check that decides support ran in this cell"
    if verdicts == {NOT_SUPPORTED}:
        return NOT_SUPPORTED, kinds[0].diagnosis
    if NOT_SUPPORTED in verdicts:
        bad = [k for k in kinds if k.verdict == NOT_SUPPORTED]
        return PARTIAL, "; ".join(f"not for {k.title}: {k.diagnosis}" for k in bad)
    if UNKNOWN in verdicts:
        return UNKNOWN, next(k.diagnosis for k in kinds if k.verdict == UNKNOWN)
    if caveats:
        return CAVEAT, "; ".join(dict.fromkeys(caveats))
    return SUPPORTED, f"all {sum(int(k.diagnosis.split()[0]) for k in kinds)} checks that decide support pass"


def judge_strategy(driver: str, strategy: Strategy, cells: dict[str, dict[str, Any]],
                   catalog: Catalog) -> StrategyVerdict:
    """The best base cell of this LB decides; an option cell (e.g. PROXY v1 on) is named when it
    lifts the caveat."""
    mine = {cid: c for cid, c in cells.items() if c["driver"] == driver}
    base = [judge_cell(cid, c, catalog) for cid, c in mine.items() if c["topology"] in strategy.with_role("base")]
    if not base:
        return StrategyVerdict(strategy.id, strategy.title, strategy.seed, NOT_RUN,
                               f"no cell of this strategy ran with {driver}")
    best = min(base, key=lambda v: (RANK[v.verdict], len(v.caveats)))
    line = best.line
    if best.verdict == CAVEAT:
        for cid, c in mine.items():
            if c["topology"] in strategy.with_role("option"):
                option = judge_cell(cid, c, catalog, "option")
                line += f" ({option.topology}: {LABELS[option.verdict]})"
    return StrategyVerdict(strategy.id, strategy.title, strategy.seed, best.verdict, line, best.kinds,
                           [v.cell for v in base])


def answer(cells: dict[str, dict[str, Any]], catalog: Catalog, lb_versions: dict[str, str]) -> dict[str, Any]:
    """The summary as plain data (it goes into report.json as ``answer``): per LB, per strategy,
    the verdict and its one-line diagnosis; then what disagrees with the prediction; then the
    misconfigurations (pitfalls) the run proves fail."""
    drivers = sorted({str(c["driver"]) for c in cells.values()})
    lbs = [LbAnswer(d, short_version(lb_versions.get(d, "")), lb_versions.get(d, ""),
                    [judge_strategy(d, s, cells, catalog) for s in catalog.strategies.values()]) for d in drivers]
    listed = {t for s in catalog.strategies.values() for t in s.topologies}
    pitfalls = []
    for cid, cell in cells.items():
        strategy, role = catalog.strategy_of(str(cell["topology"]))
        if role == "pitfall":
            judged = judge_cell(cid, cell, catalog, role)
            as_predicted = all(_status(r) in ("pass", "as_predicted", "n/a") for r in cell["checks"].values())
            pitfalls.append({**asdict(judged), "strategy": strategy.id if strategy else "",
                             "driver": cell["driver"], "as_predicted": as_predicted})
    against = [{"cell": cid, "check": rec["check"], "title": catalog.check(rec["check"]).title,
                "status": _status(rec), "expected": rec.get("expected"), "observed": _observed(rec),
                "diagnosis": rec.get("diagnosis"), "detail": rec.get("detail") or "", "because": rec.get("because"),
                "evidence": rec.get("evidence")}
               for cid, cell in cells.items() for rec in cell["checks"].values()
               if _status(rec) in ("mismatch", "error")]
    return {"lbs": [asdict(lb) for lb in lbs],
            "client_kinds": {k: {"title": v.title, "short": v.short} for k, v in catalog.client_kinds.items()},
            "against_prediction": against, "pitfalls": pitfalls,
            "unlisted_topologies": sorted({str(c["topology"]) for c in cells.values()} - listed),
            "unknown_checks": sorted({ch for c in cells.values() for ch in c["checks"] if not catalog.knows(ch)})}
