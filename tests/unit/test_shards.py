"""Sharding the matrix over N runners and merging their reports gives the one-run report."""

from __future__ import annotations

import json
from pathlib import Path

from harness import report, topology
from harness.plugin import in_shard

CELLS = [f"{t}-{lb}" for t in ("http-upgrade", "tcp-same-port", "http-only-elb") for lb in ("nginx", "haproxy", "elb")]


def test_shards_partition_the_cells_evenly() -> None:
    parts = [in_shard(CELLS, (k, 3)) for k in (1, 2, 3)]
    assert set().union(*parts) == set(CELLS)
    assert sum(len(p) for p in parts) == len(CELLS)
    assert {len(p) for p in parts} == {3}
    assert in_shard(list(reversed(CELLS)), (2, 3)) == parts[1]  # the same split whatever the order


def record(cell: str, check: str, observed: str, expected: str = "pass") -> dict[str, object]:
    topo, _, driver = cell.rpartition("-")
    return {"cell": cell, "variant": cell, "topology": topo, "driver": driver, "check": check,
            "expected": expected, "because": "seed", "observed": observed, "detail": "", "diagnosis": "",
            "ok": observed == expected, "details": {}, "environment": {}, "evidence": None}


def test_two_shards_merged_equal_one_run(tmp_path: Path) -> None:
    topologies = topology.load_all()
    records = [record(c, chk, "pass" if i % 4 else "upgrade_stripped", "pass" if i % 4 else "upgrade_stripped")
               for i, c in enumerate(CELLS) for chk in ("logs", "xff")]
    one = json.loads(report.write(records, tmp_path / "one", topologies, 10.0)[0].read_text())
    shards = [in_shard(CELLS, (k, 2)) for k in (1, 2)]
    for k, cells in enumerate(shards, 1):
        report.write([r for r in records if r["cell"] in cells], tmp_path / f"shard{k}", topologies, 6.0)
    merged = json.loads(report.merge([tmp_path / "shard1", tmp_path / "shard2"], tmp_path / "merged",
                                     topologies)[0].read_text())
    key = lambda r: (r["cell"], r["check"])  # noqa: E731
    assert sorted(merged["records"], key=key) == sorted(one["records"], key=key)
    assert merged["meta"]["counts"] == one["meta"]["counts"]
    assert merged["cells"] == one["cells"]
    assert (tmp_path / "merged" / "report.html").is_file() and (tmp_path / "merged" / "report.md").is_file()


def test_merge_names_a_folder_without_a_report(tmp_path: Path) -> None:
    try:
        report.main(["merge", str(tmp_path), "--out", str(tmp_path / "out")])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("merge of an empty folder must fail")


def test_a_cells_tests_run_next_to_each_other() -> None:
    from types import SimpleNamespace

    from harness.plugin import Cell, by_cell

    a, b = Cell("http-upgrade", "nginx"), Cell("tcp-same-port", "nginx")
    items = [SimpleNamespace(nodeid=n) for n in ("logs[a]", "logs[b]", "unit", "xff[a]", "xff[b]")]
    cells = {"logs[a]": a, "xff[a]": a, "logs[b]": b, "xff[b]": b}
    order = [i.nodeid for i in by_cell(items, cells)]  # type: ignore[arg-type]
    assert order == ["logs[a]", "xff[a]", "logs[b]", "xff[b]", "unit"]
