"""Crash safety end to end: SIGKILL the real backend process mid-drain, restart it, count CRM records.

The scenario lives in scripts/crash_test.py (also run by scripts/crash_test.sh): the mock CRM and
crmsync run as subprocesses on free ports of 127.0.0.1, on each engine: a SQLite file under tmp_path,
and a fresh database on the session's PostgreSQL server (never skipped under CI=true).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

DRIVER = Path(__file__).resolve().parent.parent / "scripts" / "crash_test.py"


def load_driver() -> ModuleType:
    """Import scripts/crash_test.py, which is not part of a package."""
    name = "crmsync_crash_test_driver"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DRIVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
async def test_sigkill_mid_drain_then_restart_leaves_exactly_one_crm_record_per_user(
    tmp_path: Path, engine: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    driver = load_driver()
    users = 1000
    settings = driver.Settings(users=users, deadline=60.0, phase_deadline=30.0)
    result = await driver.run_crash_test(tmp_path, settings, database_url)
    with capsys.disabled():  # the counts belong in the run's output, pass or fail
        print("\n" + result.summary())

    assert result.engine == engine
    assert result.ok, result.summary()
    # The kill landed mid-drain: the CRM had records, and not every user was synced in the killed DB.
    assert result.synced_at_kill is not None
    assert result.crm_records_at_kill > 0
    assert result.synced_at_kill < users
    assert result.mid_drain
    # Every user synced after the restart, with exactly one CRM record each (counted via GET /crm/users).
    assert result.crm_records == users
    assert result.distinct_crm_emails == users
    assert result.duplicates == 0
    # Creates the CRM applied but the killed backend never recorded were linked, not made again.
    assert result.inflight_linked == result.inflight_creates
