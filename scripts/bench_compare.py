"""--compare-ref for scripts/bench.py: another commit's bench, run in the same sitting, row by row beside ours.

The other commit's tree is extracted with git archive (no worktree, nothing changed in .git) and its own
scripts/bench.py runs there with this Python and these packages: its children start from its directory,
so `python -m crmsync` imports that commit's code. It runs one scenario at a time, just before ours, so
that drift in the machine (the disk's fsync rate above all) weighs on both alike. It measures SQLite,
the only engine such a commit may know.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class CompareError(Exception):
    """The other commit could not be extracted or its bench could not run."""


def resolve(ref: str) -> str:
    """The short commit id ref names; raises CompareError when it names none."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise CompareError(f"{ref!r} is not a commit here: {done.stderr.strip()}")
    return done.stdout.strip()


def extract(commit: str, dest: Path) -> Path:
    """The commit's tree under dest (git archive, then untar); returns its root."""
    tree = dest / f"tree-{commit}"
    archive = dest / f"tree-{commit}.tar"
    tree.mkdir(parents=True)
    done = subprocess.run(
        ["git", "archive", "--format=tar", "-o", str(archive), commit], cwd=ROOT, capture_output=True, check=False
    )
    if done.returncode != 0:
        raise CompareError(f"git archive {commit} failed: {done.stderr.decode(errors='replace').strip()}")
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    archive.unlink()
    if not (tree / "scripts" / "bench.py").is_file():
        raise CompareError(f"commit {commit} has no scripts/bench.py")
    return tree


def run_scenario(tree: Path, scenario: str, out: Path, quick: bool, env: list[tuple[str, str]]) -> dict[str, Any]:
    """Run the other commit's bench for one scenario; returns its JSON report (its table goes to out.txt)."""
    argv = [sys.executable, str(tree / "scripts" / "bench.py"), "--only", scenario, "--json", str(out)]
    argv += ["--quick"] if quick else []
    for key, value in env:
        argv += ["--env", f"{key}={value}"]
    with out.with_suffix(".txt").open("wb") as table:
        # Its progress lines go to our stderr, as ours do.
        done = subprocess.run(argv, cwd=tree, stdout=table, timeout=1800, check=False, env=dict(os.environ))
    if not out.exists():
        raise CompareError(f"the bench of {tree.name} wrote no report for {scenario} (exit status {done.returncode})")
    return json.loads(out.read_text(encoding="utf-8"))


def key(scenario: str, metric: str) -> tuple[str, str]:
    """A row's identity across runs: counts in brackets ("records/s (4,000/4,000 synced, drained)") vary."""
    return scenario, metric.split(" (")[0]


def judged(scenario: str, metric: str) -> int:
    """Rows that carry the "no scenario more than 10 % below" verdict: +1 for crmsync's throughput (higher is
    better), -1 for its CPU time per operation (lower is better), 0 for the rest."""
    name = key(scenario, metric)[1]
    if name.startswith("crmsync CPU ms per"):
        return -1
    return int("/s" in name and not name.startswith(("reference", "ratio")) and "share" not in name)


def compare(
    before: list[dict[str, Any]], now: list[dict[str, Any]], tolerance: float
) -> list[tuple[str, str, str, str, str, bool | None]]:
    """(scenario, metric, before, now, change, within tolerance or None) for each row both runs have."""
    earlier = {key(r["scenario"], r["metric"]): r for r in before}
    lines = []
    for row in now:
        old = earlier.get(key(row["scenario"], row["metric"]))
        if old is None:
            continue
        change, ok = "", None
        a, b = old.get("value"), row.get("value")
        if isinstance(a, int | float) and isinstance(b, int | float) and a:
            change = f"{100 * (b - a) / a:+.1f} %"
            direction = judged(row["scenario"], row["metric"])
            if direction:
                ok = b >= (1 - tolerance) * a if direction > 0 else b <= (1 + tolerance) * a
        lines.append((row["scenario"], key(row["scenario"], row["metric"])[1], old["text"], row["text"], change, ok))
    return lines
