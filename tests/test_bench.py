"""The bench's ingest and end-to-end scenarios, shrunk to one short pass (a smoke test: real processes,
real wrk, each engine; nothing about speed is asserted, the figures come from ./run.sh bench)."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from scripts import bench
from scripts.pgcluster import PgUnavailable, find_bindir
from tests.pg_fixtures import unavailable

pytestmark = pytest.mark.slow


def needs(engine: str) -> None:
    if shutil.which("wrk") is None:
        reason = "wrk is missing (./run.sh test installs Debian's wrk as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    if engine == "postgres":
        try:
            find_bindir()
        except PgUnavailable as exc:
            unavailable(str(exc))


def run(tmp_path: Path, engine: str, scenario: str) -> tuple[dict, dict[str, bench.Row]]:
    needs(engine)
    args = bench.parse_args(["--quick", "--only", scenario, "--database", engine, "--json", str(tmp_path / "b.json")])
    sizes = replace(bench.QUICK, ingest_passes=1, ingest_seconds=1.0, e2e_seconds=1.0, warmup=0.0)
    harness = bench.Harness(args, sizes, tmp_path / "work", tmp_path, engine)
    try:
        result, rows = bench.run_scenario(harness, scenario)
    finally:
        harness.close()
    assert "error" not in result, result.get("traceback")
    return result, {row.metric: row for row in rows}


def test_quick_ingest_measures_crmsync_and_the_plain_references_under_wrk(tmp_path: Path, engine: str) -> None:
    result, rows = run(tmp_path, engine, "ingest")

    references = {"sqlite": {"reference", "reference_normal"}, "postgres": {"reference"}}[engine]
    assert set(result["names"]) == references
    for name in ("crmsync", *references):
        (one,) = result[name]["passes"]
        assert one["generator"] == "wrk" and one["statuses"].get("201", 0) > 0, one
        assert one["p50_ms"] is not None and one["p99_ms"] >= one["p50_ms"]
    assert result["crmsync"]["failures"] == 0
    reference = "reference FULL" if engine == "sqlite" else "reference asyncpg"
    assert rows[f"ratio crmsync / {reference}"].value == result["ratio"] > 0
    assert rows["crmsync p50 / p99 ms"].target == "p99 < 100"
    assert rows["crmsync CPU ms per 201"].value > 0 and rows[f"{reference} CPU ms per 201"].value > 0
    assert "wrk" in rows["CPU % of a core, crmsync runs"].text


def test_quick_end_to_end_counts_users_from_the_first_create_to_the_last_sync(tmp_path: Path, engine: str) -> None:
    result, rows = run(tmp_path, engine, "e2e")

    (one,) = result["crmsync"]["passes"]
    assert one["users"] >= one["statuses"]["201"] > 0  # every user created was synced before the pass ended
    assert result["crmsync"]["users_per_s"] > 0 and result["reference"]["created_per_s"] > 0
    ratio = next(row for metric, row in rows.items() if metric.startswith("ratio to reference"))
    assert ratio.value == result["ratio"] and ratio.target == ">= 0.5"
