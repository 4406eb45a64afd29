"""The check catalog (``harness/checks.yaml``) as validated data: titles, seed sentences, roles.

The report names checks for people from this catalog and computes its answer-first summary from it
plus the recorded verdicts (``harness.answer``), so a new check adds a catalog row, not code. The
file is validated when loaded: an error names the file, the field and the fix (``CatalogError``).
A check id the catalog lacks still renders (``Catalog.check`` gives a row titled with the raw id);
``tests/unit/test_checks.py`` keeps the catalog complete for the checks the suite collects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from harness.errors import CatalogError, did_you_mean

CATALOG = Path(__file__).resolve().parent / "checks.yaml"
ROLES = ("support", "caveat", "wire", "fault")
SOURCES = ("seed", "fact")
TOPOLOGY_ROLES = ("base", "option", "pitfall", "faults")
ANY_KIND = "any"
CHECK_FIELDS = {"title", "tests", "source", "role", "client_kind", "caveats"}


@dataclass(frozen=True)
class ClientKind:
    id: str
    title: str
    short: str


@dataclass(frozen=True)
class Strategy:
    id: str
    title: str
    seed: str
    topologies: dict[str, str]  # topology name -> role (base, option, pitfall, faults)

    def with_role(self, *roles: str) -> list[str]:
        return [name for name, role in self.topologies.items() if role in roles]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    tests: str  # the seed sentence or the fact (with its source) the check holds the LB to
    source: str  # seed | fact
    role: str  # support | caveat | wire | fault
    client_kind: str  # a client kind id, or "any"
    caveats: dict[str, str] = field(default_factory=dict)  # observed outcome -> one-line caveat
    known: bool = True  # False: the catalog has no row for this id (rendered with the raw id)

    def caveat(self, outcome: str, diagnosis: str) -> str:
        return self.caveats.get(outcome) or diagnosis


@dataclass(frozen=True)
class Catalog:
    file: str
    client_kinds: dict[str, ClientKind]
    strategies: dict[str, Strategy]
    checks: dict[str, Check]

    def check(self, check_id: str) -> Check:
        """The row for a report column: ``<id>``, or ``<id>: <variant>``'s ``<id>``; an unknown id
        gets a row whose title is the raw id (role ``fault``: it never decides the answer)."""
        found = self.checks.get(check_id) or self.checks.get(check_id.split(":", 1)[0].strip())
        return found or Check(check_id, check_id, "", "", "fault", ANY_KIND, known=False)

    def knows(self, check_id: str) -> bool:
        return self.check(check_id).known

    def strategy_of(self, topology: str) -> tuple[Strategy | None, str]:
        """The seed strategy a topology answers for, and its role there (None, "" when unlisted)."""
        for strategy in self.strategies.values():
            if topology in strategy.topologies:
                return strategy, strategy.topologies[topology]
        return None, ""


def _need(file: str, where: str, data: Any, key: str, kind: type, fix: str) -> Any:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise CatalogError(file, f"{where}.{key}", f"missing or not a {kind.__name__} (got {value!r})", fix)
    return value


def _one_of(file: str, where: str, value: str, allowed: tuple[str, ...] | list[str]) -> str:
    if value not in allowed:
        raise CatalogError(file, where, f"'{value}' is not allowed",
                           f"{did_you_mean(value, allowed)}use one of: {', '.join(allowed)}")
    return value


def parse(data: Any, file: str) -> Catalog:
    """Validate the catalog's raw YAML data; every error names the file, the field and the fix."""
    if not isinstance(data, dict):
        raise CatalogError(file, "(top level)", "not a mapping", "start from the shipped harness/checks.yaml")
    kinds_raw = _need(file, "", data, "client_kinds", dict, "map each client kind id to {title, short}")
    kinds = {k: ClientKind(k, _need(file, f"client_kinds.{k}", v, "title", str, "give a title a person reads"),
                           _need(file, f"client_kinds.{k}", v, "short", str, "give a short label for the summary"))
             for k, v in kinds_raw.items()}
    strategies: dict[str, Strategy] = {}
    for sid, raw in _need(file, "", data, "strategies", dict, "map each seed strategy to its topologies").items():
        where = f"strategies.{sid}"
        topologies = _need(file, where, raw, "topologies", dict, "map topology names to base|option|pitfall|faults")
        for topo, role in topologies.items():
            _one_of(file, f"{where}.topologies.{topo}", str(role), TOPOLOGY_ROLES)
        if not [t for t, r in topologies.items() if r == "base"]:
            raise CatalogError(file, f"{where}.topologies", "no topology with role base",
                               "name the topology that is the strategy as the seed writes it")
        strategies[sid] = Strategy(sid, _need(file, where, raw, "title", str, "give a title a vendor reads"),
                                   " ".join(_need(file, where, raw, "seed", str, "quote the seed sentence").split()),
                                   {str(t): str(r) for t, r in topologies.items()})
    checks: dict[str, Check] = {}
    for cid, raw in _need(file, "", data, "checks", dict, "map each check id to its row").items():
        where = f"checks.{cid}"
        unknown = set(raw or {}) - CHECK_FIELDS if isinstance(raw, dict) else set()
        if unknown:
            raise CatalogError(file, f"{where}.{sorted(unknown)[0]}", "unknown field",
                               f"use only: {', '.join(sorted(CHECK_FIELDS))}")
        kind = _need(file, where, raw, "client_kind", str, f"one of: {', '.join([*kinds, ANY_KIND])}")
        _one_of(file, f"{where}.client_kind", kind, [*kinds, ANY_KIND])
        caveats = raw.get("caveats") or {}
        if not isinstance(caveats, dict):
            raise CatalogError(file, f"{where}.caveats", "not a mapping", "map observed outcomes to one-line caveats")
        tests = _need(file, where, raw, "tests", str, "quote the seed sentence or the fact")
        source = _need(file, where, raw, "source", str, "seed or fact")
        role = _need(file, where, raw, "role", str, "see the file's header")
        checks[cid] = Check(cid, _need(file, where, raw, "title", str, "give a title a vendor understands"),
                            " ".join(tests.split()), _one_of(file, f"{where}.source", source, SOURCES),
                            _one_of(file, f"{where}.role", role, ROLES), kind,
                            {str(k): str(v) for k, v in caveats.items()})
    return Catalog(file, kinds, strategies, checks)


def load(path: Path = CATALOG) -> Catalog:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CatalogError(str(path), "(syntax)", str(exc).replace("\n", " "), "fix the YAML syntax") from None
    return parse(data, str(path))


@lru_cache(maxsize=1)
def default() -> Catalog:
    """The shipped catalog, loaded once per process."""
    return load()
