"""The check catalog: validated at load, complete for every check the suite collects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import checks, topology
from harness.errors import CatalogError

ROOT = Path(__file__).resolve().parents[2]

# Collects the scenario suite (no Docker: --collect-only starts nothing) and prints every
# (check marker name, report column) pair, as the plugin's report will key them.
COLLECT = '''
import json, sys, pytest

class Checks:
    found = set()
    def pytest_collection_modifyitems(self, items):
        for item in items:
            for mark in item.iter_markers("check"):
                self.found.add((str(mark.args[0]), str(mark.kwargs.get("column") or mark.args[0])))

plugin = Checks()
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "tests/scenarios"], plugins=[plugin])
print("CHECKS=" + json.dumps(sorted(plugin.found)))
sys.exit(int(code))
'''


def collected_checks() -> list[tuple[str, str]]:
    proc = subprocess.run([sys.executable, "-c", COLLECT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("CHECKS=")), None)
    assert proc.returncode == 0 and line, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [tuple(pair) for pair in json.loads(line.removeprefix("CHECKS="))]


def test_every_check_the_suite_collects_has_a_catalog_row() -> None:
    """A new check without a row in harness/checks.yaml fails here (it would still render, with its raw id)."""
    found = collected_checks()
    assert len(found) >= 20  # the matrix, faults, kernel, crafted and on-wire checks were collected
    catalog = checks.load()
    missing = sorted({column for _, column in found if not catalog.knows(column)})
    assert not missing, f"add rows to harness/checks.yaml for: {missing}"


def test_every_topology_answers_for_one_seed_strategy() -> None:
    catalog = checks.load()
    unlisted = sorted(set(topology.load_all()) - {t for s in catalog.strategies.values() for t in s.topologies})
    assert not unlisted, f"add these topologies to a strategy in harness/checks.yaml: {unlisted}"


def test_rows_have_people_titles_and_what_they_test() -> None:
    catalog = checks.load()
    seed = (ROOT.parent.parent / "shared" / "seed" / "supporting-websockets.txt")
    seed_text = " ".join(seed.read_text().split()) if seed.is_file() else None
    for row in catalog.checks.values():
        assert row.title != row.id and " " in row.title, row.id
        assert row.tests, row.id
        if row.source == "seed" and seed_text is not None:  # quoted, not paraphrased
            assert row.tests in seed_text, f"{row.id}: not a sentence of the seed: {row.tests!r}"
    for strategy in catalog.strategies.values():
        assert strategy.with_role("base") and strategy.title
        if seed_text is not None:
            assert strategy.seed in seed_text, f"{strategy.id}: not a sentence of the seed: {strategy.seed!r}"


def test_unknown_ids_render_with_the_raw_id_and_variants_take_their_row() -> None:
    catalog = checks.load()
    unknown = catalog.check("frame_fidelity_64k")
    assert (unknown.title, unknown.known, unknown.role) == ("frame_fidelity_64k", False, "fault")
    assert catalog.check("idle: pings 30s, LB 4s").id == "idle"


def broken(mutate: Any) -> dict[str, Any]:
    data = yaml.safe_load(checks.CATALOG.read_text())
    mutate(data)
    return data


@pytest.mark.parametrize(("mutate", "field", "fix"), [
    (lambda d: d["checks"]["logs"].update(role="vital"), "checks.logs.role", "use one of: support"),
    (lambda d: d["checks"]["xff"].update(client_kind="cli"), "checks.xff.client_kind", "one of: noaa-stream"),
    (lambda d: d["checks"]["logs"].pop("title"), "checks.logs.title", "give a title"),
    (lambda d: d["checks"]["logs"].update(titel="x"), "checks.logs.titel", "use only"),
    (lambda d: d["strategies"]["tcp-same-port"]["topologies"].update({"tcp-same-port": "main"}),
     "strategies.tcp-same-port.topologies.tcp-same-port", "base, option, pitfall, faults"),
    (lambda d: d["strategies"]["dedicated-ws-lb"].update(topologies={"dedicated-ws-lb": "option"}),
     "strategies.dedicated-ws-lb.topologies", "role base"),
])
def test_a_bad_catalog_names_the_file_the_field_and_the_fix(mutate: Any, field: str, fix: str) -> None:
    with pytest.raises(CatalogError) as err:
        checks.parse(broken(mutate), "harness/checks.yaml")
    assert err.value.field == field and fix in str(err.value) and "harness/checks.yaml" in str(err.value)
