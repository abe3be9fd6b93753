#!/usr/bin/env bash
# Crash-safety proof: start crmsync and the mock CRM as real processes, load 1,000 users, SIGKILL
# crmsync mid-drain, start it again on the same database, and check through the CRM's API that
# every user ends synced with exactly one CRM record. Exit status 0 on a pass, 1 on a failure.
#   scripts/crash_test.sh [--database sqlite|postgres | --database-url URL] [--users N] [--kill-at FRACTION]
#                         [--deadline SECONDS] [--workdir DIR] [--keep] [--json]
# It picks free ports on 127.0.0.1 and uses a temporary database (a SQLite file, or with --database postgres
# a throwaway PostgreSQL cluster), so it does not touch data/ or a running ./run.sh. tests/test_crash.py
# runs the same driver (scripts/crash_test.py) on both engines.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
if [ ! -x "$PY" ]; then
  echo "crash_test.sh: no .venv here; run ./run.sh test once to create it" >&2
  exit 1
fi
if ! "$PY" -c 'import aiohttp, crmsync, mock_crm' 2>/dev/null; then
  echo "crash_test.sh: the project is not installed in .venv; run ./run.sh test once" >&2
  exit 1
fi
exec "$PY" scripts/crash_test.py "$@"
