"""Crash-safety proof: SIGKILL crmsync mid-drain, restart it on the same database, count CRM records.

    .venv/bin/python scripts/crash_test.py [--database sqlite|postgres | --database-url URL] [--users N]
        [--kill-at F] [--deadline S] [--workdir DIR] [--keep] [--json]

Starts the mock CRM and crmsync as real subprocesses on free ports of 127.0.0.1, loads N users
(1,000 by default), kills crmsync with SIGKILL while its workers are pushing them to the CRM, starts
it again on the same database and waits until every user is synced. Then it counts the records
through the CRM's own API: exactly one record per user, no duplicates, every local crm_id present
once. Exits 0 when every check holds, 1 otherwise. tests/test_crash.py runs the same code on both engines.

The database is a SQLite file in the work directory (--database sqlite, the default), a database on a
throwaway PostgreSQL cluster started for the run and stopped afterwards (--database postgres; needs the
server binaries, see scripts/pgcluster.py), or the empty database --database-url names (sqlite:///PATH
or postgresql://...). It is read through crmsync's own store layer, so the same SQL serves both engines.

To make the kill land mid-drain on any machine, the mock CRM answers every API request after 1 s
while the users are loaded, so the drain lags the load by at least that second and cannot finish
early. Once all users are stored, crmsync is killed as soon as the CRM holds 20 % (--kill-at) of
the records, checked every few milliseconds through GET /crm/_admin/stats; if fewer are there, the
CRM is sped up to 20 ms a request first. Killing right after the CRM applies creates usually
catches some whose reply crmsync has not stored yet: the summary counts these "in-flight" creates,
and the restart must link them (Idempotency-Key) instead of creating them twice. A copy of the
killed database (at-kill/) gives the synced count at the moment of the crash; on PostgreSQL, whose
server outlives the killed backend, the database itself is read before the restart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: scripts/ is on the path, the repository is not
    sys.path.insert(0, str(ROOT))

from crmsync.store.engines import DatabaseUrl, open_database, parse_database_url  # noqa: E402
from crmsync.store.errors import StoreError  # noqa: E402
from scripts.harness import CLIENT_ID, HOST, Children, HarnessError, Secrets, app_argv, free_port  # noqa: E402

T = TypeVar("T")


class CrashTestError(HarnessError):
    """The run could not be carried out (a process died, a deadline passed, an API said no)."""


@dataclass
class Settings:
    """Knobs of one run; the defaults are what the requirement and the test ask for."""

    users: int = 1000
    concurrency: int = 32  # parallel POST /users
    load_latency_ms: float = 1000.0  # CRM latency while loading: holds the drain back
    drain_latency_ms: float = 20.0  # CRM latency afterwards, so the rest drains in a few seconds
    kill_at: float = 0.2  # kill once the CRM holds this share of the records
    workers: int = 8  # CRMSYNC_WORKERS
    deadline: float = 120.0  # for the drain after the restart
    phase_deadline: float = 60.0  # for start-up, loading and reaching the kill point


@dataclass
class CrashResult:
    """What one run saw; ok is True when problems is empty."""

    users: int = 0
    engine: str = ""  # sqlite or postgres
    database: str = ""  # where, without any password
    crm_records_at_kill: int = 0  # the CRM's record count that triggered the kill
    synced_at_kill: int | None = None  # in a copy of the database taken after the kill
    linked_at_kill: int | None = None  # users with a crm_id in that copy
    crm_records_settled: int = 0  # ... once the requests in flight at the kill were answered
    inflight_creates: int = 0  # records the CRM made whose reply crmsync never stored
    inflight_linked: int = 0  # of those, records the restarted backend linked (no second record made)
    jobs_recovered: int | None = None  # from the restarted backend's jobs_recovered log line
    failed_seen: int = 0  # users seen as failed during the recovery (they were retried)
    crm_records: int = 0  # counted through GET /crm/users at the end
    distinct_crm_emails: int = 0
    duplicates: int = 0
    load_seconds: float = 0.0
    recovery_seconds: float = 0.0
    seconds: float = 0.0
    workdir: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def mid_drain(self) -> bool:
        """The drain had begun (the CRM held records) and had not finished (users not yet synced).

        Without the copy of the database, "not finished" falls back to records missing in the CRM.
        """
        unfinished = self.synced_at_kill if self.synced_at_kill is not None else self.crm_records_at_kill
        return self.crm_records_at_kill > 0 and unfinished < self.users

    def summary(self) -> str:
        at_kill = self.synced_at_kill if self.synced_at_kill is not None else "unknown"
        share = f"{100 * self.synced_at_kill / max(self.users, 1):.0f} %" if self.synced_at_kill is not None else "?"
        lines = [
            f"database:              {self.engine}, {self.database}",
            f"users loaded:          {self.users} in {self.load_seconds:.1f} s",
            f"synced at kill:        {at_kill} ({share}), crm_id stored for {self.linked_at_kill}",
            f"CRM records at kill:   {self.crm_records_at_kill}, {self.crm_records_settled} once in-flight"
            f" requests finished -> {self.inflight_creates} creates applied but not recorded by crmsync,"
            f" {self.inflight_linked} of them linked after the restart",
            f"jobs recovered:        {self.jobs_recovered}",
            f"recovered:             all {self.users} synced {self.recovery_seconds:.1f} s after the restart"
            f" (failed seen on the way: {self.failed_seen})",
            f"CRM records:           {self.crm_records} ({self.distinct_crm_emails} distinct emails),"
            f" duplicates={self.duplicates}",
            f"total:                 {self.seconds:.1f} s, logs in {self.workdir}",
        ]
        verdict = ["PASS"] if self.ok else ["FAIL", *(f"  - {p}" for p in self.problems)]
        return "\n".join([*lines, *verdict])


async def poll(what: str, check: Callable[[], Awaitable[T | None]], deadline: float, interval: float) -> T:
    """Call check() until it returns something other than None, at most until the deadline."""
    end = time.monotonic() + deadline
    while True:
        result = await check()
        if result is not None:
            return result
        if time.monotonic() > end:
            raise CrashTestError(f"timed out after {deadline:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


class Backend:
    """Calls to crmsync's REST API."""

    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.url = f"http://{HOST}:{port}"
        self.headers: dict[str, str] = {}

    async def sign_up(self, email: str, password: str) -> None:
        body = {"email": email, "password": password, "password_confirmation": password}
        async with self.session.post(f"{self.url}/accounts", json=body) as resp:
            if resp.status != 201:
                raise CrashTestError(f"POST /accounts answered {resp.status}: {await resp.text()}")
            self.headers = {"Authorization": f"Bearer {(await resp.json())['auth_token']}"}

    async def create_user(self, contact: dict[str, str]) -> dict[str, Any]:
        async with self.session.post(f"{self.url}/users", json=contact, headers=self.headers) as resp:
            if resp.status != 201:
                raise CrashTestError(f"POST /users {contact['email']} answered {resp.status}: {await resp.text()}")
            return await resp.json()

    async def users(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every user (with this sync_status), following next_cursor; bounded in pages."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(1000):
            params = {"limit": "500"}
            if status:
                params["sync_status"] = status
            if cursor:
                params["cursor"] = cursor
            async with self.session.get(f"{self.url}/users", params=params, headers=self.headers) as resp:
                if resp.status != 200:
                    raise CrashTestError(f"GET /users answered {resp.status}: {await resp.text()}")
                page = await resp.json()
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items
        raise CrashTestError("GET /users kept returning a next_cursor")


class Crm:
    """Calls to the mock CRM's API, with a client-credentials token."""

    def __init__(self, session: aiohttp.ClientSession, port: int, client_secret: str) -> None:
        self.session = session
        self.url = f"http://{HOST}:{port}"
        self.client_secret = client_secret
        self.headers: dict[str, str] = {}

    async def token(self) -> None:
        form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": self.client_secret}
        async with self.session.post(f"{self.url}/crm/token", data=form) as resp:
            if resp.status != 200:
                raise CrashTestError(f"POST /crm/token answered {resp.status}: {await resp.text()}")
            self.headers = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}

    async def set_faults(self, **faults: float) -> None:
        async with self.session.put(f"{self.url}/crm/_admin/faults", json=faults, headers=self.headers) as resp:
            if resp.status != 200:
                raise CrashTestError(f"PUT /crm/_admin/faults answered {resp.status}: {await resp.text()}")

    async def record_count(self) -> int:
        """The number of records the mock holds (a cheap counter; the proof pages through /crm/users)."""
        async with self.session.get(f"{self.url}/crm/_admin/stats", headers=self.headers) as resp:
            if resp.status != 200:
                raise CrashTestError(f"GET /crm/_admin/stats answered {resp.status}: {await resp.text()}")
            return int((await resp.json())["users"])

    async def records(self) -> list[dict[str, Any]]:
        """Every record through GET /crm/users, following next_cursor; bounded in pages."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(1000):
            params = {"limit": "500"}
            if cursor:
                params["cursor"] = cursor
            async with self.session.get(f"{self.url}/crm/users", params=params, headers=self.headers) as resp:
                if resp.status != 200:
                    raise CrashTestError(f"GET /crm/users answered {resp.status}: {await resp.text()}")
                page = await resp.json()
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items
        raise CrashTestError("GET /crm/users kept returning a next_cursor")


async def snapshot(url: DatabaseUrl, scratch: Path) -> tuple[int, set[str]] | None:
    """(synced users, stored crm_ids) as the killed backend left its database.

    SQLite: read from a copy of the files, which leaves the crashed ones exactly as the restart will
    find them. PostgreSQL: read from the database itself (the server outlives the backend and nothing
    else writes to it before the restart). None when it cannot be read; the run does not depend on it.
    """
    if url.engine == "sqlite":
        assert url.path is not None
        url = DatabaseUrl("sqlite", path=copy_sqlite(url.path, scratch))
    try:
        db = await open_database(url, pool_size=1)
        try:
            synced = await db.fetchval("SELECT count(*) FROM users WHERE sync_status = 'synced'")
            linked = {row[0] for row in await db.fetch("SELECT crm_id FROM users WHERE crm_id IS NOT NULL")}
        finally:
            await db.close()
    except StoreError:
        return None
    return int(synced), linked


def sqlite_url(workdir: Path) -> str:
    """The default database: a new SQLite file in workdir, by absolute path (the children run elsewhere)."""
    return f"sqlite:///{(workdir / 'crash.db').resolve()}"


def copy_sqlite(db: Path, scratch: Path) -> Path:
    """Copy a SQLite database's files (the WAL too) into scratch; returns the copy's path."""
    scratch.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal"):
        source = Path(f"{db}{suffix}")
        if source.exists():
            shutil.copyfile(source, scratch / f"{db.name}{suffix}")
    return scratch / db.name


async def prepare_database(url: DatabaseUrl) -> None:
    """Create (or migrate) the database crmsync will use; it must hold no users from an earlier run."""
    try:
        db = await open_database(url, pool_size=1)
        try:
            users = await db.fetchval("SELECT count(*) FROM users")
        finally:
            await db.close()
    except StoreError as exc:
        raise CrashTestError(f"cannot open the database {url.safe()}: {exc}") from None
    if users:
        raise CrashTestError(f"the database {url.safe()} already holds {users} users; give an empty one")


def error_lines(path: Path, count: int = 3) -> str:
    """The last ERROR lines of a log, shortened, to explain a failure without opening the file."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    found = [line[:600] for line in lines if '"level": "ERROR"' in line]
    return "\n".join(found[-count:])


def jobs_recovered(log: Path) -> int | None:
    """The count in the backend's jobs_recovered log line, if it wrote one."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("event") == "jobs_recovered":
                return int(entry.get("count", 0))
    return 0


def check_final(
    result: CrashResult, contacts: list[dict[str, str]], local: list[dict[str, Any]], records: list[dict[str, Any]]
) -> None:
    """Every user synced, one CRM record each, nothing else in the CRM; violations go to result.problems."""
    problems = result.problems
    loaded = {c["email"] for c in contacts}
    statuses = Counter(u["sync_status"] for u in local)
    if len(local) != len(contacts) or {u["email"] for u in local} != loaded:
        problems.append(f"crmsync lists {len(local)} users, expected the {len(contacts)} loaded")
    if statuses.get("synced", 0) != len(local):
        problems.append(f"not every user is synced: {dict(statuses)}")
    crm_ids = [u["crm_id"] for u in local]
    if None in crm_ids:
        problems.append(f"{crm_ids.count(None)} users have no crm_id")
    shared = {k: n for k, n in Counter(i for i in crm_ids if i).items() if n > 1}
    if shared:
        problems.append(f"{len(shared)} crm_ids are linked to several users, e.g. {next(iter(shared))}")

    result.crm_records = len(records)
    by_id = Counter(r.get("crm_id") for r in records)
    emails = Counter(str(r.get("email", "")).lower() for r in records)
    result.distinct_crm_emails = len(emails)
    result.duplicates = sum(n - 1 for n in emails.values() if n > 1) + sum(n - 1 for n in by_id.values() if n > 1)
    if len(records) != len(contacts):
        problems.append(f"the CRM holds {len(records)} records, expected exactly {len(contacts)}")
    if result.duplicates:
        dup = [e for e, n in emails.items() if n > 1][:3]
        problems.append(f"the CRM holds {result.duplicates} duplicate records, e.g. {dup}")
    if set(emails) != loaded:
        missing, extra = loaded - set(emails), set(emails) - loaded
        problems.append(f"CRM emails differ from the loaded ones: {len(missing)} missing, {len(extra)} unexpected")
    record_of = {r.get("crm_id"): r for r in records}
    absent = [u for u in local if u["crm_id"] and by_id.get(u["crm_id"], 0) != 1]
    if absent:
        problems.append(f"{len(absent)} local crm_ids are not in the CRM exactly once, e.g. {absent[0]['crm_id']}")
    differing = [
        u["id"] for u in local
        if u["crm_id"] in record_of
        and any(record_of[u["crm_id"]].get(f) != u[f] for f in ("name", "email", "phone"))
    ]  # fmt: skip
    if differing:
        problems.append(f"{len(differing)} users differ from their CRM record, e.g. user {differing[0]}")


async def run_crash_test(
    workdir: Path, settings: Settings | None = None, database_url: str | None = None
) -> CrashResult:
    """Run the whole scenario in workdir, an existing directory for the logs (and the SQLite file).

    database_url names an empty database (sqlite:///PATH or postgresql://...); by default a new SQLite
    file in workdir.

    Returns what it saw, with any violated invariant in result.problems; raises CrashTestError
    when the run itself cannot go on. Both subprocesses are always stopped before it returns.
    """
    settings = settings or Settings()
    started = time.monotonic()
    database_url = database_url or sqlite_url(workdir)
    url = parse_database_url(database_url)
    result = CrashResult(users=settings.users, engine=url.engine, database=url.safe(), workdir=str(workdir))
    await prepare_database(url)
    keys = Secrets.make()
    password = secrets.token_urlsafe(16)  # of the account that loads the users
    crm_port, backend_port = free_port(), free_port()
    while backend_port == crm_port:
        backend_port = free_port()
    mock_env = keys.mock_env(
        f"http://{HOST}:{backend_port}/webhook",
        MOCK_CRM_LATENCY_MS=str(settings.load_latency_ms),
        MOCK_CRM_LOG_FILE=str(workdir / "mock_crm.log"),
    )
    backend_env = keys.backend_env(
        database_url, f"http://{HOST}:{crm_port}",
        CRMSYNC_WORKERS=str(settings.workers), CRMSYNC_LOG_FILE=str(workdir / "crmsync.log"),
    )  # fmt: skip
    children = Children(workdir)
    mock = children.add("mock", app_argv("mock_crm", crm_port), mock_env, crm_port)
    first = children.add("crmsync-1", app_argv("crmsync", backend_port), backend_env, backend_port)
    second = children.add("crmsync-2", app_argv("crmsync", backend_port), backend_env, backend_port)
    tag = secrets.token_hex(4)
    contacts = [
        {"name": f"Crash User {i}", "email": f"crash-{tag}-{i:05d}@example.com", "phone": f"+1 555 {i:07d}"}
        for i in range(settings.users)
    ]
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as crm_session:
            await asyncio.to_thread(mock.start().wait_healthy, settings.phase_deadline)
            crm = Crm(crm_session, crm_port, keys.client)
            await crm.token()

            # First run: load every user while the CRM is slow, then let the drain run and kill it.
            first.start()
            connector = aiohttp.TCPConnector(limit=settings.concurrency)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
                await asyncio.to_thread(first.wait_healthy, settings.phase_deadline)
                backend = Backend(session, backend_port)
                await backend.sign_up(f"owner-{tag}@example.com", password)
                gate = asyncio.Semaphore(settings.concurrency)

                async def load(contact: dict[str, str]) -> None:
                    async with gate:
                        await backend.create_user(contact)

                load_start = time.monotonic()
                try:
                    async with asyncio.timeout(settings.phase_deadline), asyncio.TaskGroup() as group:
                        for contact in contacts:
                            group.create_task(load(contact))
                except TimeoutError:
                    raise CrashTestError(
                        f"loading {settings.users} users took over {settings.phase_deadline} s"
                    ) from None
                except ExceptionGroup as group_error:
                    raise CrashTestError(f"loading users failed: {group_error.exceptions[0]!r}") from None
                result.load_seconds = time.monotonic() - load_start
            # The kill follows the CRM's own count, polled every few milliseconds: right after the CRM
            # applies creates, before crmsync has stored their replies. Those creates are then "in
            # flight" at the crash, and the restart must link them rather than create them again.
            kill_count = max(1, int(settings.users * settings.kill_at))

            async def kill_point() -> int | None:
                if not first.alive():
                    raise first.died()
                count = await crm.record_count()
                return count if count >= kill_count else None

            async def next_change(seen: int) -> int:
                """The count once the CRM applies more creates; seen if none come within the bound."""

                async def changed() -> int | None:
                    if not first.alive():
                        raise first.died()
                    count = await crm.record_count()
                    return count if count != seen else None

                bound = 2 * settings.load_latency_ms / 1000 + 1
                with contextlib.suppress(CrashTestError):
                    return await poll("more records in the CRM", changed, bound, 0.002)
                return seen

            count = await kill_point()
            if count is None:
                # Not enough done while loading: speed the CRM up, kill when the count gets there.
                await crm.set_faults(latency_ms=settings.drain_latency_ms)
                count = await poll(f"{kill_count} records in the CRM", kill_point, settings.phase_deadline, 0.003)
            elif count < settings.users:
                # Enough done while loading: kill right after the next slow request is applied.
                count = await next_change(count)
            await asyncio.to_thread(first.sigkill)
            result.crm_records_at_kill = count
            await crm.set_faults(latency_ms=settings.drain_latency_ms)
            # Requests the killed backend had sent may still be answered (to nobody): let them land.
            # A PostgreSQL server may also still be finishing a COMMIT the backend sent before it died.
            await asyncio.sleep(max(settings.load_latency_ms, settings.drain_latency_ms) / 1000 + 0.5)
            at_kill = await snapshot(url, workdir / "at-kill")
            linked: set[str] = set()
            if at_kill is not None:
                result.synced_at_kill, linked = at_kill
                result.linked_at_kill = len(linked)
            settled = {r["crm_id"] for r in await crm.records()}
            result.crm_records_settled = len(settled)
            inflight = settled - linked if at_kill is not None else set()
            result.inflight_creates = len(inflight)
            if not result.mid_drain:
                result.problems.append(
                    f"the kill did not land mid-drain: {result.synced_at_kill} of {settings.users} synced,"
                    f" {result.crm_records_at_kill} CRM records"
                )

            # Second run on the same database: it must finish the job without duplicating anything.
            restart = time.monotonic()
            second.start()
            async with aiohttp.ClientSession(timeout=timeout) as session:
                await asyncio.to_thread(second.wait_healthy, settings.phase_deadline)
                backend = Backend(session, backend_port)
                # A second account: the first one is in the same database too, but this proves sign-up works.
                await backend.sign_up(f"second-{tag}@example.com", password)
                seen_failed: set[str] = set()

                async def drained() -> list[dict[str, Any]] | None:
                    if not second.alive():
                        raise second.died()
                    local = await backend.users()
                    seen_failed.update(u["id"] for u in local if u["sync_status"] == "failed")
                    done = len(local) == settings.users and all(u["sync_status"] == "synced" for u in local)
                    return local if done else None

                try:
                    local = await poll("every user synced after the restart", drained, settings.deadline, 0.2)
                except CrashTestError as exc:
                    statuses = Counter(u["sync_status"] for u in await backend.users())
                    errors = Counter(u["last_error"] for u in await backend.users("failed"))
                    raise CrashTestError(f"{exc}; statuses {dict(statuses)}, errors {dict(errors)}") from None
                result.recovery_seconds = time.monotonic() - restart
                result.failed_seen = len(seen_failed)
            result.jobs_recovered = jobs_recovered(second.log_path)
            result.inflight_linked = len(inflight & {u["crm_id"] for u in local})
            check_final(result, contacts, local, await crm.records())
    except HarnessError as exc:
        output = second.log_path if second.proc is not None else first.log_path
        errors = error_lines(output)
        detail = f"\nlast errors in {output.name}:\n{errors}" if errors else ""
        raise CrashTestError(f"{exc} (logs in {workdir}){detail}") from None
    finally:
        await asyncio.to_thread(children.stop_all, 5.0)
    result.seconds = time.monotonic() - started
    return result


@contextlib.contextmanager
def work_directory(path: str | None, keep: bool) -> Iterator[tuple[Path, list[bool]]]:
    """The given directory, or a fresh one removed afterwards unless keep or the run failed."""
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path), [False]  # given by the caller: never removed
        return
    made = Path(tempfile.mkdtemp(prefix="crmsync-crash-"))
    remove = [not keep]
    try:
        yield made, remove
    finally:
        if remove[0]:
            shutil.rmtree(made, ignore_errors=True)


@contextlib.asynccontextmanager
async def throwaway_postgres(keep: bool) -> AsyncIterator[str]:
    """An empty database on a PostgreSQL cluster of our own, stopped (and removed unless keep) afterwards."""
    if str(ROOT) not in sys.path:  # run as a script: scripts/ is on the path, the repository is not
        sys.path.insert(0, str(ROOT))
    from scripts.pgcluster import PgCluster, PgUnavailable

    # The prefix lets the test suite's clean-up (tests/pg_fixtures.py) stop it should this process be killed.
    datadir = Path(tempfile.mkdtemp(prefix=f"crmsync-pg-{os.getpid()}-crash-"))
    cluster = PgCluster(datadir)
    try:
        try:
            server = await asyncio.to_thread(cluster.start)
        except (PgUnavailable, RuntimeError, ValueError) as exc:
            raise CrashTestError(f"cannot start a PostgreSQL cluster: {exc}") from None
        conn = await asyncpg.connect(server)
        try:
            await conn.execute("CREATE DATABASE crmsync_crash")
        finally:
            await conn.close()
        yield server.rsplit("/", 1)[0] + "/crmsync_crash"
    finally:
        await asyncio.to_thread(cluster.stop)
        if keep:
            print(f"crash_test: the PostgreSQL cluster (stopped) is kept in {datadir}", file=sys.stderr)
        else:
            shutil.rmtree(datadir, ignore_errors=True)


async def _main_async(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    settings = Settings(users=args.users, deadline=args.deadline, kill_at=args.kill_at)
    with work_directory(args.workdir, args.keep) as (workdir, remove):
        try:
            async with contextlib.AsyncExitStack() as stack:
                url = args.database_url
                if url is None and args.database == "postgres":
                    url = await stack.enter_async_context(throwaway_postgres(args.keep))
                result = await run_crash_test(workdir, settings, url)
        except HarnessError as exc:
            remove[0] = False
            print(f"crash_test: FAIL: {exc}\ncrash_test: logs kept in {workdir}", file=sys.stderr)
            return 1
        except asyncio.CancelledError:
            remove[0] = False
            print(f"crash_test: stopped; logs kept in {workdir}", file=sys.stderr)
            return 130
        if not result.ok:
            remove[0] = False
        elif remove[0]:
            result.workdir += " (removed; --keep to keep them)"
        print(result.summary())
        if args.json:
            print(json.dumps(asdict(result), indent=2))
        return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crash_test.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", choices=("sqlite", "postgres"), default="sqlite",
        help="a SQLite file in the work directory (default), or a throwaway PostgreSQL cluster started for the run",
    )  # fmt: skip
    parser.add_argument("--database-url", help="an empty database to use instead: sqlite:///PATH or postgresql://...")
    parser.add_argument("--users", type=int, default=1000, help="users to load (default 1000)")
    parser.add_argument(
        "--kill-at", type=float, default=0.2, help="kill when the CRM holds this share of the records (default 0.2)"
    )
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds allowed for the recovery (default 120)")
    parser.add_argument("--workdir", help="keep the database and logs here (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory after a pass")
    parser.add_argument("--json", action="store_true", help="also print the result as JSON")
    args = parser.parse_args(argv)
    if args.users < 10 or not 0 < args.kill_at < 1:
        parser.error("--users must be at least 10 and --kill-at between 0 and 1")
    if args.database_url is not None:
        try:
            parse_database_url(args.database_url)
        except ValueError as exc:
            parser.error(f"--database-url: {exc}")
    try:
        return asyncio.run(_main_async(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
