"""Benchmark harness: the mock CRM and crmsync as real subprocesses, on fresh temporary databases.

    ./run.sh bench [--database sqlite|postgres|both] [--compare-ref GITREF] [--rounds N]
                   [--only ingest,e2e,drain,ratelimit,webhooks,backlog,lookups] [--quick] [--json PATH]
                   [--profile [--profile-interval S]] [--env KEY=VALUE ...] [--keep]

--database picks the engine crmsync runs on (default sqlite): SQLite files in the work directory, or
a throwaway PostgreSQL cluster the harness starts for the run (durable: fsync, synchronous_commit and
full_page_writes on; on disk under the temporary directory, not a tmpfs) and stops afterwards; every
scenario gets a fresh database. "both" runs each scenario on SQLite, then on PostgreSQL, and adds the
ratio of PostgreSQL's ingest to SQLite's from the same run (target >= 0.8). --compare-ref GITREF also
runs the bench of another commit (git archive into the work directory, same Python and packages) on
SQLite, scenario by scenario just before this one's, and prints both with the change. --rounds N runs
each scenario N times on every target, in turn, and prints each row's median with its range: on a
shared machine one run can be 20 % off either way.

Scenarios (each starts its own processes on free ports of 127.0.0.1 and stops them afterwards):
  ingest     POST /users with unique emails at 64 connections (201/s, p50, p99): crmsync and the plain
             references in turn, each on a new database, 2 x 8 s (A B C A B C), medians. The references
             (scripts/bench_reference.py) parse, INSERT, commit and answer 201, nothing more: on SQLite
             one aiosqlite connection, WAL, synchronous=FULL (the durability crmsync promises; the ratio
             is taken against it) and synchronous=NORMAL (no fsync: the CPU ceiling); on PostgreSQL an
             asyncpg pool on the same cluster. Target: crmsync's p99 < 100 ms.
  e2e        10 s of creates, then until the last one is synced, the CRM unlimited: users/s from the
             first create to the last sync, against the FULL (asyncpg) reference's 201/s in the same
             scenario (e2e, reference, twice). Target: >= 0.5.
  drain      20,000 pending users written through the store, CRM unlimited: seconds until
             all are synced, records/s.
  ratelimit  the CRM limited to 20 requests/s: records/s and the share of CRM requests answered 429,
             without batching (CRMSYNC_BATCH_SIZE=1, 200 users) and with the default batch size
             (20,000 users); each stops at its deadline (25 s) if it has not drained by then.
  webhooks   signed webhooks (Standard Webhooks) on synced users for ~10 s at 64 connections:
             "applied" answers per second, p50, p99.
  backlog    1,000,000 pending users: crmsync's peak RSS (VmHWM), start-up and records/s over the first 30 s.
  lookups    GET /meetings/{id}/sync_status for ~10 s at 64 connections, the meeting cache on and off.
  cluster    PostgreSQL only (a SQLite file serves one process): several replicas on one database. Ingest
             with 1, 2 and 3 replicas, wrk spreading the connections over them (one thread per replica),
             201/s and the scaling against one replica (target >= 1.3 x with 2); and the rate-limited
             drain with 3 replicas (CRM at 20 requests/s, default batch size): records/s (target >=
             0.9 x limit x batch size) and the share of CRM requests answered 429 (target <= 1 %).

CPU is shown in % of one core per process (the PostgreSQL server with all its backends as one), with
"others": what the rest of the machine used meanwhile, and as CPU milliseconds per operation, which
moves much less than throughput when other jobs share the machine.

Load comes from wrk (Debian's wrk, one thread, the scenario's connections, a 1 s warm-up run not counted)
with scripts/bench_wrk.lua: a unique email per create, the JWT from a 0600 file, JSON out (p50, p99,
answers by status). Signed webhooks need a fresh HMAC per request, which wrk's Lua cannot compute: that
scenario keeps the Python generator (scripts/bench_load.py), the allowed fallback, and says so in its
CPU row. Pending users are written through crmsync's own store (crmsync.store.creates.insert_users, in
one transaction; scripts/bench_db.py) while crmsync is stopped; crmsync queues them again at start-up.
Drains are timed from the moment /healthz answers (records synced before that are not counted);
progress is read from the database every 0.2 s. Ports, secrets, children and teardown come from
scripts/harness.py, which scripts/crash_test.py shares.

--quick shrinks sizes and durations about 5x for a smoke run. --profile runs every crmsync process
of the run under pyinstrument and writes profile-<engine>-<scenario>.html next to the JSON (needs
pyinstrument in the venv). --env passes an extra setting to crmsync (e.g. --env CRMSYNC_WORKERS=16).

Writes bench.json (or --json PATH) and prints a table. Exits 0 whether or not targets are met, 1
when a scenario could not be run, 130 when interrupted. Every child is stopped (SIGTERM, SIGKILL
after a grace period; SIGINT for a profiled crmsync so pyinstrument writes its report) and the
temporary directory is deleted unless --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
if str(ROOT) not in sys.path:  # run as a script: scripts/ is on the path, the repository is not
    sys.path.insert(0, str(ROOT))

from scripts import bench_compare  # noqa: E402
from scripts.bench_db import BenchDatabase, PostgresBench, Reader, SqliteBench  # noqa: E402
from scripts.harness import (  # noqa: E402
    CLIENT_ID,
    HOST,
    PYTHON,
    Child,
    Children,
    HarnessError,
    Secrets,
    app_argv,
    base_env,
    free_port,
    tail,
)

TITLES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}

SCENARIOS = ("ingest", "e2e", "drain", "ratelimit", "webhooks", "backlog", "lookups", "cluster")
ALIASES = {
    "end-to-end": "e2e", "rate-limited": "ratelimit", "rate_limited": "ratelimit", "webhook": "webhooks",
    "memory": "backlog", "replicas": "cluster", "scaling": "cluster",
}  # fmt: skip
POLL = 0.2  # seconds between database polls while a backlog drains
STARTED = time.monotonic()

# Targets from the issue.
E2E_RATIO = 0.5  # end-to-end users/s over the plain durable reference's 201/s
ASYNCPG = "asyncpg"
REFERENCE_NAMES = {"FULL": "reference FULL", "NORMAL": "reference NORMAL", ASYNCPG: "reference asyncpg"}
INGEST_P99_MS = 100.0
DRAIN_RPS = 1500.0
BATCH_SHARE = 0.9  # of limit x batch size
MAX_429_SHARE = 0.01
BACKLOG_RSS_MB = 100.0  # per replica, with 1,000,000 jobs queued (issue 12)
BACKLOG_STARTUP_S = 2.0
WEBHOOK_RPS = 1500.0
POSTGRES_ONLY = ("cluster",)  # nothing to compare on SQLite with --compare-ref
SCALING_2 = 1.3  # PostgreSQL ingest with 2 replicas over 1, on this 2-core machine (issue 12)
CLUSTER_REPLICAS = (1, 2, 3)
PG_INGEST_RATIO = 0.8  # of SQLite's ingest in the same run
REGRESSION = 0.10  # SQLite: no scenario more than this far below the --compare-ref commit
ENGINES = {"sqlite": ("sqlite",), "postgres": ("postgres",), "both": ("sqlite", "postgres")}


@dataclass(frozen=True)
class Sizes:
    """How much each scenario does; --quick divides by about 5."""

    connections: int = 64
    load_seconds: float = 10.0
    ingest_passes: int = 2  # ingest and e2e: crmsync and the references in turn, this many times
    ingest_seconds: float = 8.0  # each pass of the ingest scenario and of the references
    e2e_seconds: float = 10.0  # of creates in each end-to-end pass
    warmup: float = 1.0
    drain_users: int = 20_000
    drain_deadline: float = 90.0
    rate_limit: float = 20.0
    batch_size: int = 100  # crmsync's default CRMSYNC_BATCH_SIZE, for the target
    rl_plain_users: int = 200
    rl_batch_users: int = 20_000
    rl_deadline: float = 25.0
    webhook_users: int = 1_000
    webhook_sync_deadline: float = 60.0
    backlog_users: int = 1_000_000
    backlog_window: float = 30.0


FULL = Sizes()
QUICK = replace(
    FULL, load_seconds=2.0, ingest_seconds=2.0, e2e_seconds=2.0, warmup=0.5,
    drain_users=4_000, drain_deadline=30.0, rl_plain_users=40,
    rl_batch_users=4_000, rl_deadline=8.0, webhook_users=200, backlog_users=50_000, backlog_window=6.0,
)  # fmt: skip


class BenchError(HarnessError):
    """A scenario could not be carried out (a process died, a deadline passed, an API said no)."""


@dataclass
class Row:
    """One line of the table."""

    scenario: str
    metric: str
    value: Any
    text: str
    target: str = ""
    ok: bool | None = None


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def now_iso() -> str:
    """crmsync's timestamp format (crmsync.timeutil.isoformat)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, form: bool = False,
    timeout: float = 10.0,
) -> tuple[int, Any]:  # fmt: skip
    """One request with urllib (the harness stays out of the load); returns (status, parsed JSON or text)."""
    data = None
    headers = dict(headers or {})
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 (http://127.0.0.1)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def memory_mb(pid: int) -> tuple[float | None, float | None]:
    """(current RSS, peak RSS) of a process in MB: /proc VmRSS/VmHWM, else psutil (RSS only), else None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            values = {k: v for k, _, v in (line.partition(":") for line in status)}
        return int(values["VmRSS"].split()[0]) / 1024, int(values["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        pass
    try:
        import psutil  # optional: only where /proc is missing (macOS)

        return psutil.Process(pid).memory_info().rss / 2**20, None
    except Exception:  # psutil missing or the process is gone
        return None, None


def cpu_seconds(pid: int, reaped: bool = False) -> float | None:
    """User + system CPU seconds of a process, all threads: /proc/<pid>/stat, else psutil, else None.

    reaped adds the children it has waited for (a server's exited backends and workers).
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            data = stat.read()
        fields = data[data.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped else 0)
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except Exception:
        return None


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of a server and its children, live and reaped (PostgreSQL: postmaster and backends)."""
    total = cpu_seconds(pid, reaped=True)
    if total is None:
        return None
    children: list[str] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            children += (task / "children").read_text().split()
    for child in children:
        total += cpu_seconds(int(child), reaped=True) or 0.0
    return total


class ServerTree:
    """A database server's process tree, measured as one by CpuMeter."""

    def __init__(self, pid: int) -> None:
        self.pid = pid


def cpu_of(process: Child | ServerTree) -> float | None:
    return tree_cpu_seconds(process.pid) if isinstance(process, ServerTree) else cpu_seconds(process.pid)


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy (all cores, every process): /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


class CpuMeter:
    """Share of one core each process used between start() and stop(), in %; "machine" is every process
    on the machine together (up to 100 x cores), so that load from outside the bench shows."""

    def __init__(self, **children: Child | ServerTree | None) -> None:
        self.children = {name: child for name, child in children.items() if child is not None}
        self.before: dict[str, float | None] = {}
        self.started = 0.0

    def start(self) -> CpuMeter:
        self.before = {name: cpu_of(child) for name, child in self.children.items()}
        self.before["machine"] = machine_busy_seconds()
        self.started = time.monotonic()
        return self

    def stop(self) -> dict[str, float | None]:
        wall = max(time.monotonic() - self.started, 1e-9)
        now = {name: cpu_of(child) for name, child in self.children.items()}
        now["machine"] = machine_busy_seconds()
        shares: dict[str, float | None] = {}
        for name, after in now.items():
            before = self.before.get(name)
            shares[name] = None if before is None or after is None else round(100 * (after - before) / wall, 1)
        return shares


def fmt_cpu(shares: dict[str, float | None], load: float | None = None, generator: str = "load") -> str:
    """crmsync 60, mock 5, wrk 12, others 80: "others" is the machine's busy time not ours (another job)."""
    ours = {name: v for name, v in shares.items() if name != "machine"}
    parts = [f"{name} {'n/a' if v is None else f'{v:.0f}'}" for name, v in ours.items()]
    if load is not None:
        parts.append(f"{generator} {load:.0f}")
    machine = shares.get("machine")
    if machine is not None and None not in ours.values():
        others = machine - sum(v for v in ours.values() if v is not None) - (load or 0.0)
        parts.append(f"others {max(others, 0):.0f}")
    return ", ".join(parts)


class Harness:
    """Processes, secrets, the temporary directory and the databases of one engine's run.

    Constructing one for PostgreSQL starts its cluster; close() stops it.
    """

    def __init__(self, args: argparse.Namespace, sizes: Sizes, workdir: Path, out_dir: Path, engine: str) -> None:
        self.args, self.sizes, self.workdir, self.out_dir = args, sizes, workdir, out_dir
        self.engine = engine
        self.secrets = Secrets.make()
        self.extra_env = dict(args.env)
        self.children = Children(workdir)
        self.sessions: dict[Child, Path] = {}  # a profiled crmsync's pyinstrument session file
        self.profiles: dict[str, dict[str, Any]] = {}
        workdir.mkdir(parents=True, exist_ok=True)
        self.db: BenchDatabase = (
            SqliteBench(workdir, self.migrate) if engine == "sqlite" else PostgresBench(self.migrate)
        )
        pid = self.db.server_pid()
        self.server = ServerTree(pid) if pid else None

    def close(self) -> None:
        self.stop_all()
        self.db.close()

    def migrate(self, url: str) -> None:
        """crmsync applies its migrations to the database at url (started without a CRM, then stopped)."""
        self.stop(self.start_backend("template", url, None, profile=False))

    # --- processes -------------------------------------------------------------------------------

    def start_mock(self, label: str, rate_limit: float = 0.0) -> Child:
        port = free_port()
        # No webhooks from the mock during benchmarks.
        env = self.secrets.mock_env("", MOCK_CRM_RATE_LIMIT=str(rate_limit), MOCK_CRM_LOG_LEVEL="WARNING")
        return self.children.add(f"{label}-mock_crm", app_argv("mock_crm", port), env, port).start().wait_healthy()

    def start_backend(
        self,
        label: str,
        db: str,
        crm: Child | None,
        env: dict[str, str] | None = None,
        profile: bool = True,
        wait: bool = True,
    ) -> Child:
        """Start crmsync on db; with wait, return once /healthz answers (else the caller waits)."""
        port = free_port()
        crm_url = crm.url if crm else f"http://{HOST}:9"
        full_env = self.secrets.backend_env(db, crm_url, CRMSYNC_LOG_LEVEL="WARNING") | self.extra_env | (env or {})
        argv = app_argv("crmsync", port)
        session = None
        if profile and self.args.profile:
            session = self.workdir / f"profile-{label}.pyisession"
            argv = [PYTHON, "-m", "pyinstrument", "--interval", str(self.args.profile_interval),
                    "-r", "pyisession", "-o", str(session), *argv[1:]]  # fmt: skip
        child = self.children.add(f"{label}-crmsync", argv, full_env, port)
        if session is not None:
            self.sessions[child] = session
            child.interrupt = True  # pyinstrument writes its session on SIGINT
        child.start()
        return child.wait_healthy(deadline=60.0 if session else 30.0) if wait else child

    def start_reference(self, label: str, kind: str) -> Child:
        """scripts/bench_reference.py on a new database: kind FULL or NORMAL (SQLite), asyncpg (PostgreSQL)."""
        port = free_port()
        if kind == ASYNCPG:
            where = ["--postgres", self.db.empty(f"{label}-reference")]
        else:
            where = ["--db", str(self.workdir / f"{label}-reference-{kind}.db"), "--synchronous", kind]
        argv = [PYTHON, str(SCRIPTS / "bench_reference.py"), *where, "--host", HOST, "--port", str(port)]
        return self.children.add(f"{label}-reference-{kind}", argv, base_env(), port).start().wait_healthy()

    def stop(self, child: Child) -> None:
        """Stop a child; for a profiled crmsync, render its report next to the JSON."""
        session = self.sessions.get(child)
        code = child.stop(grace=120.0 if session else 15.0)
        if session is not None:
            self.render_profile(child, session)
        elif code not in (0, -signal.SIGTERM, None):
            log(f"note: {child.name} exited with {code}")

    def stop_all(self) -> None:
        self.children.stop_all()

    # --- profiles --------------------------------------------------------------------------------

    def render_profile(self, child: Child, session: Path) -> None:
        label = f"{self.engine}-{child.name.removesuffix('-crmsync')}"
        if not session.exists():
            log(f"warning: pyinstrument wrote no session for {child.name}; see {child.log_path}")
            self.profiles[label] = {"error": "no session written", "log": tail(child.log_path, 5)}
            return
        html = self.out_dir / f"profile-{label}.html"
        done = subprocess.run(
            [PYTHON, "-m", "pyinstrument", "--load", str(session), "-r", "html", "-o", str(html)],
            cwd=ROOT, capture_output=True, timeout=300, check=False,
        )  # fmt: skip
        entry: dict[str, Any] = {"html": str(html) if done.returncode == 0 else None}
        try:
            entry.update(hottest_frames(session))
        except Exception as exc:  # a summary is a bonus; the HTML is the report
            entry["summary_error"] = f"{type(exc).__name__}: {exc}"
        self.profiles[label] = entry
        log(f"profile of {label} written to {html}")

    # --- the database ----------------------------------------------------------------------------

    def fresh_db(self, label: str) -> str:
        """The URL of a new database with crmsync's schema (a copy of a template crmsync migrated once)."""
        return self.db.fresh(label)

    # --- HTTP helpers ----------------------------------------------------------------------------

    def sign_up(self, backend: Child) -> str:
        password = secrets.token_urlsafe(16)
        body = {"email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "password": password,
                "password_confirmation": password}  # fmt: skip
        status, reply = http("POST", backend.url + "/accounts", body, timeout=30.0)
        if status != 201:
            raise BenchError(f"POST /accounts answered {status}: {reply}")
        return str(reply["auth_token"])

    def crm_stats(self, crm: Child) -> dict[str, Any]:
        form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": self.secrets.client}
        status, reply = http("POST", crm.url + "/crm/token", form, form=True)
        if status != 200:
            raise BenchError(f"POST /crm/token answered {status}: {reply}")
        status, stats = http(
            "GET", crm.url + "/crm/_admin/stats", headers={"Authorization": f"Bearer {reply['access_token']}"}
        )
        if status != 200:
            raise BenchError(f"GET /crm/_admin/stats answered {status}: {stats}")
        calls = {k: v for k, v in stats.get("calls", {}).items() if is_api_route(k)}
        requests = sum(calls.values())
        limited = int(stats.get("rate_limited", 0))
        return {
            "api_requests": requests,
            "calls": calls,
            "batch_requests": sum(v for k, v in calls.items() if k.endswith("/crm/users/batch")),
            "rate_limited": limited,
            "share_429": limited / requests if requests else 0.0,
            "records": stats.get("users"),
            "responses": stats.get("responses", {}),
        }

    def load(
        self, mode: str, url: str, config: dict[str, Any], label: str, duration: float | None = None
    ) -> dict[str, Any]:
        """Run scripts/bench_load.py against url; returns its JSON result, with "latencies_ms"."""
        config_path = self.workdir / f"load-{label}.json"
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(config, out)
        sizes = self.sizes
        duration = sizes.load_seconds if duration is None else duration
        dump = self.workdir / f"latencies-{label}.json"
        argv = [
            PYTHON, str(SCRIPTS / "bench_load.py"), "--mode", mode, "--url", url, "--config", str(config_path),
            "--duration", str(duration), "--warmup", str(sizes.warmup), "--connections", str(sizes.connections),
            "--dump", str(dump),
        ]  # fmt: skip
        limit = duration + sizes.warmup + 90
        done = subprocess.run(argv, cwd=ROOT, env=base_env(), capture_output=True, timeout=limit, check=False)
        if done.returncode != 0:
            raise BenchError(
                f"bench_load.py exited with {done.returncode}:\n{done.stderr.decode(errors='replace')[-2000:]}"
            )
        result = json.loads(done.stdout.decode().strip().splitlines()[-1])
        result["latencies_ms"] = json.loads(dump.read_text(encoding="utf-8"))
        return result

    def wrk(
        self,
        url: str,
        config: dict[str, str],
        label: str,
        duration: float | None = None,
        warmup: bool = True,
        ports: list[int] | None = None,
    ) -> dict[str, Any]:
        """Run wrk with scripts/bench_wrk.lua against url (1 thread, the scenario's connections): after a
        warm-up run that is not counted (unless warmup is False), one measured run. Returns the script's JSON
        (requests, seconds, rps, p50_ms, p99_ms, max_ms, statuses, errors) with count and cpu_percent (wrk's
        CPU, % of one core, from its rusage). With ports (several replicas), one wrk thread per port, each
        thread's connections to its port (a load balancer's round robin by connection)."""
        wrk = shutil.which("wrk")
        if wrk is None:
            raise BenchError("wrk is missing: ./run.sh bench installs Debian's wrk (as root with apt-get)")
        config_path = self.workdir / f"wrk-{label}.conf"
        os.close(os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))  # the JWT: on no command line
        sizes = self.sizes
        duration = sizes.load_seconds if duration is None else duration
        runs = [("warmup", sizes.warmup)] if warmup and sizes.warmup > 0 else []
        result: dict[str, Any] = {}
        for phase, seconds in [*runs, ("measured", duration)]:
            with os.fdopen(os.open(config_path, os.O_WRONLY | os.O_TRUNC), "w", encoding="utf-8") as out:
                out.write("".join(f"{k}={v}\n" for k, v in (config | {"tag": f"{config['tag']}{phase[0]}"}).items()))
            argv = [wrk, f"-t{len(ports) if ports else 1}", f"-c{sizes.connections}",
                    f"-d{max(1, round(seconds))}s", "--timeout", "30s",
                    "-s", str(SCRIPTS / "bench_wrk.lua"), url, "--", str(config_path)]  # fmt: skip
            out_path, err_path = self.workdir / f"wrk-{label}.out", self.workdir / f"wrk-{label}.err"
            with out_path.open("wb") as out, err_path.open("wb") as err:
                env = base_env() | ({"BENCH_WRK_PORTS": ",".join(map(str, ports))} if ports else {})
                proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
                started = time.monotonic()
                _, status, usage = os.wait4(proc.pid, 0)  # wait4: the rusage of wrk itself
                wall = max(time.monotonic() - started, 1e-9)
                proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                raise BenchError(f"wrk exited with {proc.returncode}:\n{tail(err_path)}\n{tail(out_path)}")
            lines = [line for line in out_path.read_text().splitlines() if line.startswith("{")]
            if not lines:
                raise BenchError(f"wrk printed no JSON summary:\n{tail(out_path)}")
            result = json.loads(lines[-1])
            result["cpu_percent"] = round(100 * (usage.ru_utime + usage.ru_stime) / wall, 1)
        result["count"] = result["requests"]
        result["errors"] = {k: v for k, v in result["errors"].items() if v}
        result["generator"] = "wrk"
        return result


def is_api_route(name: str) -> bool:
    """A mock CRM route that counts as an API request (and can be rate limited)."""
    path = name.partition(" ")[2]
    return path.startswith("/crm/") and path != "/crm/token" and not path.startswith("/crm/_admin")


def status_counts(conn: Reader) -> Counter[str]:
    return Counter(dict(conn.fetch("SELECT sync_status, COUNT(*) FROM users GROUP BY sync_status")))


def drain(
    h: Harness,
    label: str,
    users: int,
    deadline: float,
    rate_limit: float = 0.0,
    env: dict[str, str] | None = None,
    replicas: int = 1,
) -> dict[str, Any]:
    """Insert users pending, start crmsync (replicas processes on the one database), poll until all are
    settled or the deadline; stop them all. RSS and start-up are the first replica's."""
    crm = h.start_mock(label, rate_limit)
    db = h.fresh_db(label)
    insert_seconds = h.db.insert_pending(db, users, label)
    log(f"{label}: {users:,} pending users written in {insert_seconds:.1f} s; starting crmsync")
    spawned = time.monotonic()
    # Replicas start side by side, so that the first does not drain alone while the others boot.
    others = [h.start_backend(f"{label}-r{n}", db, crm, env, wait=False) for n in range(2, replicas + 1)]
    backend = h.start_backend(label, db, crm, env)
    first_ready = time.monotonic()
    for replica in others:
        replica.wait_healthy(deadline=30.0)
    ready = time.monotonic()
    meter = CpuMeter(crmsync=backend, **{f"crmsync_{n}": b for n, b in enumerate(others, 2)}, mock=crm,
                     postgres=h.server).start()  # fmt: skip
    peak_rss = 0.0
    timeline: list[tuple[float, int, float | None]] = []  # (s since /healthz, synced, RSS MB), about 1 per s
    with h.db.reader(db) as conn:
        counts = status_counts(conn)
        synced_at_ready = counts["synced"]
        while True:
            now = time.monotonic()
            rss, _ = memory_mb(backend.pid)
            peak_rss = max(peak_rss, rss or 0.0)
            if not timeline or now - ready - timeline[-1][0] >= 1.0:
                timeline.append((round(now - ready, 2), counts["synced"], None if rss is None else round(rss, 1)))
            finished = counts["synced"] + counts["failed"] >= users
            if finished or now - ready >= deadline:
                break
            for replica in (backend, *others):
                if not replica.alive():
                    raise replica.died()
            time.sleep(POLL)
            counts = status_counts(conn)
    _, hwm = memory_mb(backend.pid)
    cpu = meter.stop()
    seconds = max(now - ready, 1e-9)
    timeline.append((round(seconds, 2), counts["synced"], timeline[-1][2]))
    # After the first 2 s: without the CRM's burst allowance and crmsync's start, when 2 s or more remain.
    late = [p for p in timeline if p[0] >= 2.0]
    steady = (late[-1][1] - late[0][1]) / (late[-1][0] - late[0][0]) if late and late[-1][0] - late[0][0] >= 2 else None
    stats = h.crm_stats(crm)
    for replica in (backend, *others):
        h.stop(replica)
    h.stop(crm)
    result = {
        "users": users,
        "replicas": replicas,
        "rate_limit": rate_limit,
        "env": env or {},
        "insert_seconds": round(insert_seconds, 2),
        "startup_seconds": round(first_ready - spawned, 2),
        "deadline": deadline,
        "finished": counts["synced"] + counts["failed"] >= users,
        "seconds": round(seconds, 2),
        "synced": counts["synced"],
        "failed": counts["failed"],
        "pending": counts["pending"],
        "synced_at_ready": synced_at_ready,
        "records_per_s": round((counts["synced"] - synced_at_ready) / seconds, 1),
        "records_per_s_after_2s": None if steady is None else round(steady, 1),
        "peak_rss_mb": round(max(peak_rss, hwm or 0.0), 1) or None,
        "process_cpu_percent": cpu,
        "crm": stats,
        "timeline": timeline,
    }
    log(
        f"{label}: {result['synced']:,}/{users:,} synced in {seconds:.1f} s -> {result['records_per_s']:,.0f} records/s"
    )
    return result


# --- scenarios -------------------------------------------------------------------------------------


def percentile(ascending: list[float], share: float) -> float:
    """Nearest-rank percentile of a non-empty ascending list."""
    return ascending[min(max(1, math.ceil(share * len(ascending))), len(ascending)) - 1]


def references(h: Harness) -> dict[str, str]:
    """The reference apps of this engine, by result key: SQLite FULL (the durability crmsync promises) and
    NORMAL (no fsync per commit: the CPU ceiling); on PostgreSQL a plain asyncpg app on the same cluster."""
    if h.db.engine == "sqlite":
        return {"reference": "FULL", "reference_normal": "NORMAL"}
    return {"reference": ASYNCPG}


def ingest_pass(h: Harness, label: str) -> dict[str, Any]:
    """crmsync on a fresh database with its mock CRM, under wrk's creates for the scenario's pass length."""
    sizes = h.sizes
    crm = h.start_mock(label)
    db = h.fresh_db(label)
    backend = h.start_backend(label, db, crm)
    token = h.sign_up(backend)
    log(f"{label}: crmsync on {h.db.title} under wrk for {sizes.ingest_seconds:g} s at {sizes.connections} connections")
    meter = CpuMeter(crmsync=backend, mock=crm, postgres=h.server).start()
    ours = h.wrk(backend.url, {"mode": "ingest", "token": token, "tag": tag()}, label, sizes.ingest_seconds)
    ours["process_cpu_percent"] = meter.stop()
    h.stop(backend)
    h.stop(crm)
    return ours


def reference_pass(h: Harness, label: str, kind: str) -> dict[str, Any]:
    """A reference app on a new database under the same load as crmsync."""
    sizes = h.sizes
    reference = h.start_reference(label, kind)
    log(f"{label}: reference {kind} under wrk for {sizes.ingest_seconds:g} s at {sizes.connections} connections")
    meter = CpuMeter(reference=reference, postgres=h.server).start()
    result = h.wrk(reference.url, {"mode": "ingest", "token": "unused", "tag": tag()}, label, sizes.ingest_seconds)
    result["process_cpu_percent"] = meter.stop()
    h.stop(reference)
    return result


def tag() -> str:
    return uuid.uuid4().hex[:8]


def summarise(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """One target's passes in one result: medians of 201/s, p50, p99 and each process's CPU share."""
    for part in passes:
        part["created_per_s"] = round(part["statuses"].get("201", 0) / max(part["seconds"], 1e-9), 1)
        part["failures"] = part["count"] - part["statuses"].get("201", 0) + sum(part["errors"].values())
    return {
        "created_per_s": median([p["created_per_s"] for p in passes]),
        "p50_ms": median([p["p50_ms"] for p in passes]),
        "p99_ms": median([p["p99_ms"] for p in passes]),
        "failures": sum(p["failures"] for p in passes),
        "process_cpu_percent": cpu_medians(passes),
        "cpu_percent": median([p["cpu_percent"] for p in passes]),  # wrk's
        "passes": passes,
    }


def cpu_medians(passes: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each process's median CPU share over the passes."""
    names = dict.fromkeys(name for part in passes for name in part["process_cpu_percent"])
    return {name: median([part["process_cpu_percent"].get(name) for part in passes]) for name in names}


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def each(passes: list[dict[str, Any]], key: str = "created_per_s") -> str:
    """The passes' values for a row: [1,061, 1,255]."""
    return "[" + ", ".join(short(p[key]) for p in passes) + "]"


def scenario_ingest(h: Harness) -> tuple[dict[str, Any], list[Row]]:
    """crmsync and the references in turn (A B C A B C), each on a new database, so that drift in the machine
    (another job, the disk's fsync rate) weighs on all alike; medians of the passes."""
    sizes = h.sizes
    refs = references(h)
    runs: dict[str, list[dict[str, Any]]] = {"crmsync": [], **{key: [] for key in refs}}
    for n in range(1, sizes.ingest_passes + 1):
        runs["crmsync"].append(ingest_pass(h, f"ingest-{n}"))
        for key, kind in refs.items():
            runs[key].append(reference_pass(h, f"ingest-{n}", kind))
    result = {name: summarise(passes) for name, passes in runs.items()}
    ours, theirs = result["crmsync"], result["reference"]
    for name, part in result.items():
        if not part["created_per_s"]:
            raise BenchError(f"ingest: {name} created nothing: {part['passes']}")
    name = REFERENCE_NAMES[refs["reference"]]
    ratio = ours["created_per_s"] / theirs["created_per_s"]
    result["ratio"] = round(ratio, 3)
    result["names"] = {key: REFERENCE_NAMES[kind] for key, kind in refs.items()}
    times = f"{sizes.ingest_passes} x {sizes.ingest_seconds:g} s, interleaved"
    rows = [
        Row("ingest", f"crmsync 201/s (median of {times})", ours["created_per_s"],
            f"{ours['created_per_s']:,.0f} {each(ours['passes'])}"),
        Row("ingest", "crmsync p50 / p99 ms", ours["p99_ms"], f"{ours['p50_ms']:.1f} / {ours['p99_ms']:.1f}",
            f"p99 < {INGEST_P99_MS:g}", ours["p99_ms"] < INGEST_P99_MS),
        Row("ingest", f"{name} 201/s", theirs["created_per_s"],
            f"{theirs['created_per_s']:,.0f} {each(theirs['passes'])}"),
        Row("ingest", f"{name} p50 / p99 ms", theirs["p99_ms"], f"{theirs['p50_ms']:.1f} / {theirs['p99_ms']:.1f}"),
        Row("ingest", f"ratio crmsync / {name}", round(ratio, 3), f"{ratio:.2f}"),
    ]  # fmt: skip
    if "reference_normal" in result:
        ceiling = result["reference_normal"]
        over = ours["created_per_s"] / ceiling["created_per_s"]
        result["ratio_normal"] = round(over, 3)
        rows += [
            Row("ingest", "reference NORMAL (no fsync: the CPU ceiling) 201/s", ceiling["created_per_s"],
                f"{ceiling['created_per_s']:,.0f} {each(ceiling['passes'])}"),
            Row("ingest", "ratio crmsync / reference NORMAL", round(over, 3), f"{over:.2f}"),
        ]  # fmt: skip
    for key, part in result.items():
        if key in runs:
            who = "crmsync" if key == "crmsync" else REFERENCE_NAMES[refs[key]]
            rows.append(Row("ingest", f"CPU % of a core, {who} runs", None,
                            fmt_cpu(part["process_cpu_percent"], part["cpu_percent"], "wrk")))  # fmt: skip
    rows.append(Row("ingest", "crmsync non-201 or errors", ours["failures"], f"{ours['failures']:,}", "0",
                    ours["failures"] == 0))  # fmt: skip
    return result, rows


def scenario_e2e(h: Harness) -> tuple[dict[str, Any], list[Row]]:
    """Creates for e2e_seconds (wrk, 64 connections), then until the last one is synced, the CRM unlimited:
    users/s from the first create to the last sync, against the plain durable reference in the same run
    (e2e, reference, e2e, reference, each on a new database)."""
    sizes = h.sizes
    kind = references(h)["reference"]
    runs: dict[str, list[dict[str, Any]]] = {"crmsync": [], "reference": []}
    for n in range(1, sizes.ingest_passes + 1):
        runs["crmsync"].append(e2e_pass(h, f"e2e-{n}"))
        runs["reference"].append(reference_pass(h, f"e2e-{n}", kind))
    theirs = summarise(runs["reference"])
    passes = runs["crmsync"]
    users_per_s = median([p["users_per_s"] for p in passes]) or 0.0
    if not users_per_s or not theirs["created_per_s"]:
        raise BenchError(f"e2e: nothing was created: {passes} {theirs}")
    ratio = users_per_s / theirs["created_per_s"]
    ours = {
        "users_per_s": users_per_s,
        "created_per_s": median([p["created_per_s"] for p in passes]),
        "p99_ms": median([p["p99_ms"] for p in passes]),
        "sync_lag_s": median([p["sync_lag_s"] for p in passes]),
        "process_cpu_percent": cpu_medians(passes),
        "passes": passes,
    }
    name = REFERENCE_NAMES[kind]
    rows = [
        Row("e2e", f"users/s, first create to last synced ({sizes.e2e_seconds:g} s of creates)", users_per_s,
            f"{users_per_s:,.0f} {each(passes, 'users_per_s')}"),
        Row("e2e", f"ratio to {name} 201/s", round(ratio, 3),
            f"{ratio:.2f} ({users_per_s:,.0f} / {theirs['created_per_s']:,.0f})", f">= {E2E_RATIO:g}",
            ratio >= E2E_RATIO),
        Row("e2e", "creates 201/s / p99 ms while loading", ours["created_per_s"],
            f"{ours['created_per_s']:,.0f} / {ours['p99_ms']:.1f}"),
        Row("e2e", "s from the end of the load to the last sync", ours["sync_lag_s"], f"{ours['sync_lag_s']:.1f}"),
        Row("e2e", "CPU % of a core, crmsync runs (load and drain)", None, fmt_cpu(ours["process_cpu_percent"])),
    ]  # fmt: skip
    return {"crmsync": ours, "reference": theirs, "ratio": round(ratio, 3)}, rows


def e2e_pass(h: Harness, label: str) -> dict[str, Any]:
    sizes = h.sizes
    crm = h.start_mock(label)
    db = h.fresh_db(label)
    backend = h.start_backend(label, db, crm)
    token = h.sign_up(backend)
    log(f"{label}: creates for {sizes.e2e_seconds:g} s, then until all are synced")
    meter = CpuMeter(crmsync=backend, mock=crm, postgres=h.server).start()
    started = time.monotonic()
    load = h.wrk(backend.url, {"mode": "ingest", "token": token, "tag": tag()}, label, sizes.e2e_seconds, False)
    loaded = time.monotonic()
    with h.db.reader(db) as conn:
        while True:
            counts = status_counts(conn)
            total = sum(counts.values())
            if counts["failed"]:
                raise BenchError(f"{label}: {counts['failed']} users failed to sync: {dict(counts)}")
            if counts["synced"] >= total:
                break
            if time.monotonic() - loaded > sizes.drain_deadline or not backend.alive():
                raise BenchError(f"{label}: not all synced {sizes.drain_deadline:g} s after the load: {dict(counts)}")
            time.sleep(POLL / 2)
    finished = time.monotonic()
    load["process_cpu_percent"] = meter.stop()
    h.stop(backend)
    h.stop(crm)
    load["created_per_s"] = round(load["statuses"].get("201", 0) / max(load["seconds"], 1e-9), 1)
    load["users"] = total
    load["users_per_s"] = round(total / (finished - started), 1)
    load["sync_lag_s"] = round(finished - loaded, 2)
    log(f"{label}: {total:,} users synced {load['sync_lag_s']:.1f} s after the load -> {load['users_per_s']:,.0f}/s")
    return load


def average(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 1) if known else None


def scenario_drain(h: Harness) -> tuple[dict[str, Any], list[Row]]:
    sizes = h.sizes
    result = drain(h, "drain", sizes.drain_users, sizes.drain_deadline)
    rps = result["records_per_s"]
    done = (
        ""
        if result["finished"]
        else f" (NOT drained: {result['synced']:,} synced at the {sizes.drain_deadline:g} s deadline)"
    )
    rows = [
        Row("drain", f"{sizes.drain_users:,} users: seconds to sync all", result["seconds"],
            f"{result['seconds']:.1f}{done}", "all synced", result["finished"] and not result["failed"]),
        Row("drain", "crmsync start-up s (spawn -> /healthz)", result["startup_seconds"],
            f"{result['startup_seconds']:.1f}"),
        Row("drain", "records/s", rps, f"{rps:,.0f}", f">= {DRAIN_RPS:,.0f}", rps >= DRAIN_RPS),
        Row("drain", "peak RSS MB", result["peak_rss_mb"], fmt_mb(result["peak_rss_mb"])),
        Row("drain", "CPU % of a core", None, fmt_cpu(result["process_cpu_percent"])),
    ]  # fmt: skip
    return result, rows


def scenario_ratelimit(h: Harness) -> tuple[dict[str, Any], list[Row]]:
    sizes = h.sizes
    limit = sizes.rate_limit
    plain_deadline = max(sizes.rl_deadline, 2.5 * sizes.rl_plain_users / limit)
    plain = drain(h, "ratelimit-plain", sizes.rl_plain_users, plain_deadline, limit, {"CRMSYNC_BATCH_SIZE": "1"})
    batched = drain(h, "ratelimit-batch", sizes.rl_batch_users, sizes.rl_deadline, limit)
    batch_size = int(h.extra_env.get("CRMSYNC_BATCH_SIZE", sizes.batch_size))
    target = BATCH_SHARE * limit * batch_size
    rows = []
    for name, result, rps_target in (("BATCH_SIZE=1", plain, None), ("batch default", batched, target)):
        scenario = f"ratelimit {limit:g}/s, {name}"
        rps, share = result["records_per_s"], result["crm"]["share_429"]
        state = "drained" if result["finished"] else f"stopped at {result['seconds']:.0f} s"
        late = result["records_per_s_after_2s"]
        text = f"{rps:,.1f}" + (f" (after the first 2 s: {late:,.1f})" if late is not None else "")
        rows += [
            Row(scenario, f"records/s ({result['synced']:,}/{result['users']:,} synced, {state})", rps,
                text,
                f">= {rps_target:,.0f}" if rps_target else "", rps >= rps_target if rps_target else None),
            Row(scenario, "share of CRM requests answered 429", round(share, 4),
                f"{100 * share:.2f} % of {result['crm']['api_requests']:,}",
                f"<= {100 * MAX_429_SHARE:g} %" if rps_target else "", share <= MAX_429_SHARE if rps_target else None),
            Row(scenario, "batch requests to the CRM", result["crm"]["batch_requests"],
                f"{result['crm']['batch_requests']:,}"),
        ]  # fmt: skip
    return {"limit": limit, "without_batching": plain, "with_batching": batched}, rows


def scenario_webhooks(h: Harness) -> tuple[dict[str, Any], list[Row]]:
    sizes = h.sizes
    label = "webhooks"
    crm = h.start_mock(label)
    db = h.fresh_db(label)
    h.db.insert_pending(db, sizes.webhook_users, label)
    backend = h.start_backend(label, db, crm)
    end = time.monotonic() + sizes.webhook_sync_deadline
    with h.db.reader(db) as conn:
        while (counts := status_counts(conn))["synced"] < sizes.webhook_users:
            if counts["failed"] or time.monotonic() > end or not backend.alive():
                raise BenchError(f"webhooks: the {sizes.webhook_users:,} users did not all sync: {dict(counts)}")
            time.sleep(POLL)
        crm_ids = [row[0] for row in conn.fetch("SELECT crm_id FROM users WHERE sync_status = 'synced'")]
    log(f"webhooks: {len(crm_ids):,} synced users; signed webhooks for {sizes.load_seconds:g} s")
    config = {"secret": h.secrets.webhook, "crm_ids": crm_ids, "tag": uuid.uuid4().hex[:8]}
    meter = CpuMeter(crmsync=backend, mock=crm, postgres=h.server).start()
    result = h.load("webhook", backend.url, config, label)
    result["process_cpu_percent"] = meter.stop()
    result.pop("latencies_ms")
    h.stop(backend)
    h.stop(crm)
    with h.db.reader(db) as conn:
        result["applied_in_db"] = conn.fetchval("SELECT COUNT(*) FROM webhook_events WHERE result = 'applied'")
    applied = result["results"].get("applied", 0)
    if not applied:
        raise BenchError(f"webhooks: none was applied: {result}")
    result["applied_per_s"] = round(applied / result["seconds"], 1)
    others = result["count"] - applied + sum(result["errors"].values())
    rows = [
        Row("webhooks", "applied/s", result["applied_per_s"], f"{result['applied_per_s']:,.0f}",
            f">= {WEBHOOK_RPS:,.0f}", result["applied_per_s"] >= WEBHOOK_RPS),
        Row("webhooks", "p50 / p99 ms", result["p99_ms"], f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f}"),
        # wrk cannot sign each request (HMAC-SHA256 in its Lua), so webhooks keep the Python generator.
        Row("webhooks", "CPU % of a core (load: the Python generator, the fallback)", None,
            fmt_cpu(result["process_cpu_percent"], result.get("cpu_percent"), "python load")),
        Row("webhooks", "answers other than applied", others,
            f"{others:,} {result['statuses']} {result['results']}", "0", others == 0),
    ]  # fmt: skip
    return result, rows


def scenario_lookups(h: Harness) -> tuple[dict[str, Any], list[Row]]:
    """Does the in-process cache in front of the meeting lookup (and the verified-token cache) pay?
    The seed's status endpoint, GET /meetings/{id}/sync_status, with CRMSYNC_MEETING_CACHE on and off."""
    results: dict[str, Any] = {}
    rows = []
    for label, size in (("cache on", "10000"), ("cache off", "0")):
        name = f"lookups-{size}"
        crm = h.start_mock(name)
        backend = h.start_backend(name, h.fresh_db(name), crm, env={"CRMSYNC_MEETING_CACHE": size})
        token = h.sign_up(backend)
        body = {"title": "Bench", "starts_at": "2026-12-01T10:00:00Z"}
        status, meeting = http("POST", backend.url + "/meetings", body, {"Authorization": f"Bearer {token}"})
        if status != 201:
            raise BenchError(f"lookups: could not create a meeting: {status} {meeting}")
        log(f"lookups: GET sync_status with the meeting cache {label.split()[1]} for {h.sizes.load_seconds:g} s")
        config = {"mode": "get", "token": token, "path": f"/meetings/{meeting['id']}/sync_status", "tag": name}
        result = h.wrk(backend.url, config, name)
        h.stop(backend)
        h.stop(crm)
        results[label] = result
        rows.append(Row("lookups", f"sync_status reads/s, {label}", result["rps"],
                        f"{result['rps']:,.0f} (p99 {result['p99_ms']:.1f} ms)"))  # fmt: skip
    gain = results["cache on"]["rps"] / results["cache off"]["rps"]
    rows.append(Row("lookups", "cache on / off", gain, f"{gain:.2f}"))
    return results, rows


def scenario_backlog(h: Harness) -> tuple[dict[str, Any], list[Row]]:
    sizes = h.sizes
    result = drain(h, "backlog", sizes.backlog_users, sizes.backlog_window)
    mb = result["peak_rss_mb"]
    window = (
        f"all drained in {result['seconds']:.0f} s"
        if result["finished"]
        else (f"over the first {result['seconds']:.0f} s, {result['pending']:,} still pending")
    )
    rows = [
        Row("backlog", f"{sizes.backlog_users:,} pending: crmsync peak RSS MB", mb, fmt_mb(mb),
            f"<= {BACKLOG_RSS_MB:g}", mb is not None and mb <= BACKLOG_RSS_MB),
        Row("backlog", "crmsync start-up s (spawn -> /healthz)", result["startup_seconds"],
            f"{result['startup_seconds']:.1f}", f"<= {BACKLOG_STARTUP_S:g}",
            result["startup_seconds"] <= BACKLOG_STARTUP_S),
        Row("backlog", f"records/s ({window})", result["records_per_s"],
            f"{result['records_per_s']:,.0f}"),
    ]  # fmt: skip
    return result, rows


def cluster_ingest_pass(h: Harness, replicas: int) -> dict[str, Any]:
    """Creates through `replicas` crmsync processes on one fresh database, wrk spreading its connections."""
    sizes = h.sizes
    label = f"cluster-ingest-{replicas}"
    crm = h.start_mock(label)
    db = h.fresh_db(label)
    backends = [h.start_backend(f"{label}-r{n}", db, crm) for n in range(1, replicas + 1)]
    token = h.sign_up(backends[0])  # one account in the shared database; the JWT holds on every replica
    log(f"{label}: {replicas} replica(s) under wrk for {sizes.ingest_seconds:g} s at {sizes.connections} connections")
    named = {"crmsync" if n == 1 else f"crmsync_{n}": b for n, b in enumerate(backends, 1)}
    meter = CpuMeter(**named, mock=crm, postgres=h.server).start()
    result = h.wrk(backends[0].url, {"mode": "ingest", "token": token, "tag": tag()}, label, sizes.ingest_seconds,
                   ports=[b.port for b in backends])  # fmt: skip
    result["process_cpu_percent"] = meter.stop()
    for backend in backends:
        h.stop(backend)
    h.stop(crm)
    result["created_per_s"] = round(result["statuses"].get("201", 0) / max(result["seconds"], 1e-9), 1)
    return result


def scenario_cluster(h: Harness) -> tuple[dict[str, Any], list[Row]]:
    """Several replicas on one PostgreSQL: ingest scaling, and the cluster's shared CRM rate budget."""
    if h.engine != "postgres":
        return {"skipped": "PostgreSQL only"}, [
            Row("cluster", "replicas on one database", None, "PostgreSQL only: run with --database postgres or both")
        ]
    sizes = h.sizes
    ingest = {n: cluster_ingest_pass(h, n) for n in CLUSTER_REPLICAS}
    one = ingest[1]["created_per_s"] or 1e-9
    rows = []
    for n, part in ingest.items():
        scale = part["created_per_s"] / one
        failures = sum(v for k, v in part["statuses"].items() if k != "201") + sum(part["errors"].values())
        rows.append(Row(
            "cluster ingest", f"{n} replica(s): 201/s, p99 ms, scaling over 1", round(scale, 3),
            f"{part['created_per_s']:,.0f}, p99 {part['p99_ms']:.0f}, {scale:.2f} x"
            + (f", {failures:,} failed" if failures else ""),
            f">= {SCALING_2:g} x" if n == 2 else "", scale >= SCALING_2 if n == 2 else None,
        ))  # fmt: skip
        rows.append(Row("cluster ingest", f"{n} replica(s): CPU % of a core", None,
                        fmt_cpu(part["process_cpu_percent"], part["cpu_percent"], "wrk")))  # fmt: skip
    limit = sizes.rate_limit
    replicas = CLUSTER_REPLICAS[-1]
    paced = drain(h, f"cluster-ratelimit-{replicas}", sizes.rl_batch_users, sizes.rl_deadline, limit, replicas=replicas)
    target = BATCH_SHARE * limit * sizes.batch_size
    rps, share = paced["records_per_s"], paced["crm"]["share_429"]
    state = "drained" if paced["finished"] else f"stopped at {paced['seconds']:.0f} s"
    scenario = f"cluster ratelimit {limit:g}/s, {replicas} replicas"
    rows += [
        Row(scenario, f"records/s ({paced['synced']:,}/{paced['users']:,} synced, {state})", rps, f"{rps:,.1f}",
            f">= {target:,.0f}", rps >= target),
        Row(scenario, "share of CRM requests answered 429", round(share, 4),
            f"{100 * share:.2f} % of {paced['crm']['api_requests']:,}", f"<= {100 * MAX_429_SHARE:g} %",
            share <= MAX_429_SHARE),
        Row(scenario, "CPU % of a core", None, fmt_cpu(paced["process_cpu_percent"])),
    ]  # fmt: skip
    return {"ingest": {str(n): part for n, part in ingest.items()}, "ratelimit": paced}, rows


RUNNERS: dict[str, Callable[[Harness], tuple[dict[str, Any], list[Row]]]] = {
    "ingest": scenario_ingest,
    "e2e": scenario_e2e,
    "drain": scenario_drain,
    "ratelimit": scenario_ratelimit,
    "webhooks": scenario_webhooks,
    "backlog": scenario_backlog,
    "cluster": scenario_cluster,
    "lookups": scenario_lookups,
}


# --- reporting -------------------------------------------------------------------------------------


def fmt_mb(value: float | None) -> str:
    return "n/a (no /proc, no psutil)" if value is None else f"{value:,.1f}"


def hottest_frames(session_path: Path, limit: int = 10) -> dict[str, Any]:
    """The crmsync functions with the most samples in a pyinstrument session (main thread only).

    idle: samples in the event loop's select/epoll (uvloop's: in run_app itself), i.e. waiting for
    sockets, for the database server and for aiosqlite's thread (pyinstrument does not sample that
    thread). Percentages below are of the busy (non-idle) samples. own: samples whose innermost crmsync
    frame is this function: its own code and the library code it calls (crmsync/__main__.py, which
    holds the whole event loop, is left out). total: samples
    with the function anywhere on the stack.
    """
    from pyinstrument.frame_info import frame_info_get_identifier  # only with --profile
    from pyinstrument.session import Session

    session = Session.load(session_path)
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    sampled = idle = in_crmsync = 0.0
    marker, entry = f"{os.sep}crmsync{os.sep}", f"{os.sep}crmsync{os.sep}__main__.py"
    for stack, seconds in session.frame_records:
        sampled += seconds
        frames = [[*frame_info_get_identifier(info).split("\x00"), "", ""][:3] for info in stack]
        # uvloop waits in C, so its idle samples end in the Python frame that started the loop.
        if any(f[0] == "select" and f[1].endswith("selectors.py") for f in frames[-2:]) or (
            frames and frames[-1][0] == "run_app" and frames[-1][1].endswith(f"aiohttp{os.sep}web.py")
        ):
            idle += seconds
            continue
        innermost, seen = None, set()
        for function, path, line in frames:
            if marker in path and not path.endswith(entry):
                key = f"{function} ({path[path.rindex(marker) + 1 :]}:{line})"
                innermost = key
                if key not in seen:
                    seen.add(key)
                    total[key] += seconds
        if innermost:
            own[innermost] += seconds
            in_crmsync += seconds
    busy = sampled - idle

    def share(value: float) -> float:
        return round(100 * value / busy, 1) if busy else 0.0

    return {
        "sampled_seconds": round(sampled, 2),
        "cpu_seconds": round(session.cpu_time, 2),
        "idle_percent_of_samples": round(100 * idle / sampled, 1) if sampled else 0.0,
        "crmsync_percent_of_busy": share(in_crmsync),
        "top_own": [{"frame": k, "seconds": round(v, 3), "percent": share(v), "total_percent": share(total[k])}
                    for k, v in own.most_common(limit)],
        "top_total": [{"frame": k, "seconds": round(v, 3), "percent": share(v)} for k, v in total.most_common(limit)],
    }  # fmt: skip


VERDICT = {True: "yes", False: "NO", None: ""}


def print_table(rows: list[Row], header: str) -> None:
    lines = [(r.scenario, r.metric, r.text, r.target, VERDICT[r.ok]) for r in rows]
    print_grid(header, ("scenario", "metric", "value", "target", "ok"), lines)


def print_grid(header: str, columns: tuple[str, ...], lines: list[tuple[str, ...]]) -> None:
    table = [columns, *lines]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    rule = "-+-".join("-" * w for w in widths)
    print(f"\n{header}")
    for n, line in enumerate(table):
        print(" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            print(rule)


def run_scenario(harness: Harness, name: str) -> tuple[dict[str, Any], list[Row]]:
    """One scenario on one engine: its result and rows; a crash is reported as a row, never raised."""
    try:
        result, rows = RUNNERS[name](harness)
        return result, rows + cpu_rows(name, result)
    except Exception as exc:  # report it, stop what it left running, go on with the next
        log(f"{name} on {harness.engine} crashed: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}, [crash_row(name, exc)]
    finally:
        harness.stop_all()  # whatever a crashed scenario left running


def run_before(tree: Path, name: str, out: Path, args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    """One scenario of the --compare-ref commit's bench: its rows (with CPU per operation) and result."""
    try:
        report = bench_compare.run_scenario(tree, name, out, args.quick, args.env)
    except (bench_compare.CompareError, subprocess.SubprocessError, OSError, ValueError) as exc:
        return [crash_row(name, exc)], {"error": str(exc)}
    if "engines" in report:  # a bench that knows engines: its rows per engine, with their CPU rows already
        report = report["engines"]["sqlite"]
        return [Row(**row) for row in report["rows"]], report["scenarios"].get(name, {})
    result = report["scenarios"].get(name, {})
    return [Row(**row) for row in report["rows"]] + cpu_rows(name, result), result


def median_rows(runs: list[list[Row]]) -> list[Row]:
    """Each row's median over the rounds (the round whose value is in the middle), with the range beside it.

    The range is of the row's value (for "p50 / p99 ms", the p99). Rows without a number come from the
    middle round; a crash in any round is kept.
    """
    if len(runs) == 1:
        return runs[0]
    by_key: dict[tuple[str, str], list[Row]] = {}
    crashes = []
    for run in runs:
        for row in run:
            if row.metric == "CRASHED":
                crashes.append(row)
            else:
                by_key.setdefault(bench_compare.key(row.scenario, row.metric), []).append(row)
    merged = []
    for candidates in by_key.values():
        numbers = [r for r in candidates if isinstance(r.value, int | float) and not isinstance(r.value, bool)]
        if len(numbers) == len(candidates) and len(numbers) > 1:
            ordered = sorted(numbers, key=lambda r: r.value)
            middle = ordered[(len(ordered) - 1) // 2]
            low, high = ordered[0].value, ordered[-1].value
            spread = f" [{short(low)}..{short(high)} in {len(ordered)} rounds]" if low != high else ""
            merged.append(replace(middle, text=middle.text + spread))
        else:
            merged.append(candidates[(len(candidates) - 1) // 2])
    return merged + crashes


def short(value: float) -> str:
    """A number for a range: 1,106 or 651 or 0.475."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def ingest_across_engines(results: dict[str, Any]) -> Row | None:
    """PostgreSQL's ingest against SQLite's, both measured in this round; None unless both ran."""
    try:
        pg, lite = (results[e]["crmsync"]["created_per_s"] for e in ("postgres", "sqlite"))
    except (KeyError, TypeError):
        return None
    ratio = pg / lite
    text = f"{ratio:.2f} ({pg:,.0f} / {lite:,.0f})"
    target = f">= {PG_INGEST_RATIO:g}"
    return Row(
        "ingest", "ratio to SQLite's crmsync 201/s (this run)", round(ratio, 3), text, target, ratio >= PG_INGEST_RATIO
    )


def cpu_rows(name: str, result: dict[str, Any]) -> list[Row]:
    """CPU milliseconds per operation, for crmsync and the database server: unlike throughput, this hardly
    moves when other jobs share the machine (the cores are shared, the work per operation is not).
    Works on reports of older commits too (the same result keys)."""
    try:
        if name == "ingest":
            shares, rate, unit = result["crmsync"]["process_cpu_percent"], result["crmsync"]["created_per_s"], "201"
        elif name in ("drain", "backlog"):
            shares, rate, unit = result["process_cpu_percent"], result["records_per_s"], "record"
        elif name == "e2e":
            shares, rate = result["crmsync"]["process_cpu_percent"], result["crmsync"]["users_per_s"]
            unit = "user (created and synced)"
        elif name == "webhooks":
            shares, rate, unit = result["process_cpu_percent"], result["applied_per_s"], "applied webhook"
        else:
            return []
    except (KeyError, TypeError):
        return []
    rows = []
    for process in ("crmsync", "postgres"):
        if isinstance(share := shares.get(process), int | float) and rate:
            ms = round(10 * share / rate, 3)  # share % of a core / (ops per s) -> ms of CPU per op
            rows.append(Row(name, f"{process} CPU ms per {unit}", ms, f"{ms:.2f}"))
    if name == "ingest":  # what the plainest app spends on the same create, from the same run
        for key, label in result.get("names", {}).items():
            part = result.get(key) or {}
            share, rate = (part.get("process_cpu_percent") or {}).get("reference"), part.get("created_per_s")
            if isinstance(share, int | float) and rate:
                ms = round(10 * share / rate, 3)
                rows.append(Row(name, f"{label} CPU ms per 201", ms, f"{ms:.2f}"))
    return rows


def crash_row(name: str, exc: BaseException) -> Row:
    lines = [line for line in str(exc).splitlines() if line.strip()] or [""]
    summary = lines[0].removesuffix("; last lines of its output:") + (f" ... {lines[-1]}" if len(lines) > 1 else "")
    return Row(name, "CRASHED", None, f"{type(exc).__name__}: {summary[:160]}", ok=False)


def machine() -> dict[str, Any]:
    model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform()}  # fmt: skip


def loadavg() -> list[float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return [round(v, 2) for v in os.getloadavg()]
    return None


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, timeout=10, check=False)
        return done.stdout.decode().strip() if done.returncode == 0 else ""

    return {"commit": git("rev-parse", "--short", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench.py", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )  # fmt: skip
    parser.add_argument(
        "--database", choices=tuple(ENGINES), default="sqlite",
        help="the engine crmsync runs on; both: each scenario on SQLite, then on PostgreSQL (default sqlite)",
    )  # fmt: skip
    parser.add_argument(
        "--compare-ref", metavar="GITREF", help="also run this commit's bench on SQLite, scenario by scenario"
    )
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--quick", action="store_true", help="about 5x smaller sizes and durations (a smoke run)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="run each scenario this often on every target; print the medians"
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "bench.json", help="where to write results (default bench.json)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="run crmsync under pyinstrument; profile-*.html beside the JSON"
    )
    parser.add_argument("--profile-interval", type=float, default=0.001, help="pyinstrument sampling interval in s")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra crmsync setting")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (databases, logs)")
    args = parser.parse_args(argv)
    only = []
    for name in filter(None, (n.strip().lower() for n in args.only.split(","))):
        name = ALIASES.get(name, name)
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
        if name not in only:
            only.append(name)
    args.only = only or list(SCENARIOS)
    pairs = []
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("CRMSYNC_"):
            parser.error(f"--env takes CRMSYNC_NAME=VALUE, got {item!r}")
        pairs.append((key, value))
    args.env = pairs
    if not 1 <= args.rounds <= 9:
        parser.error("--rounds takes 1 to 9")
    args.compare_commit = None
    if args.compare_ref:
        if "sqlite" not in ENGINES[args.database]:
            parser.error("--compare-ref compares SQLite's figures: use it with --database sqlite or both")
        try:
            args.compare_commit = bench_compare.resolve(args.compare_ref)
        except bench_compare.CompareError as exc:
            parser.error(f"--compare-ref: {exc}")
    if args.profile:
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            parser.error(f"--profile needs pyinstrument: {PYTHON} -m pip install pyinstrument")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    json_path = args.json.resolve()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="crmsync-bench-"))
    engines = ENGINES[args.database]

    def on_sigterm(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    started_at, started, load_before = now_iso(), time.monotonic(), loadavg()
    harnesses: dict[str, Harness] = {}
    results: dict[str, dict[str, Any]] = {engine: {} for engine in engines}
    rows: dict[str, list[Row]] = {engine: [] for engine in engines}
    described: dict[str, Any] = {}
    before: dict[str, Any] | None = None
    crashed: list[str] = []
    interrupted = False
    log(f"scenarios: {', '.join(args.only)}{' (quick)' if args.quick else ''} on {' and '.join(engines)};"
        f" work directory {workdir}; load average {load_before}")  # fmt: skip
    try:
        tree = None
        if args.compare_commit:
            before = {"ref": args.compare_ref, "commit": args.compare_commit, "rows": [], "scenarios": {}}
            try:
                tree = bench_compare.extract(args.compare_commit, workdir / "before")
            except bench_compare.CompareError as exc:
                crashed.append(f"before:{args.compare_commit}")
                before["error"] = str(exc)
                log(f"--compare-ref: {exc}")
        for engine in engines:
            try:
                harnesses[engine] = Harness(args, sizes, workdir / engine, json_path.parent, engine)
                described[engine] = harnesses[engine].db.describe()
                log(f"{engine}: {described[engine]}")
            except Exception as exc:  # no cluster (no server binaries, a failed start): the other engine goes on
                crashed.append(engine)
                rows[engine].append(crash_row("(database)", exc))
                log(f"{engine}: cannot run: {exc}")
        for name in args.only:
            # Every round runs the scenario on each target in turn: drift in the machine weighs on all alike.
            rounds: dict[str, list[list[Row]]] = {target: [] for target in (*harnesses, "before")}
            for n in range(1, args.rounds + 1):
                step = f" (round {n} of {args.rounds})" if args.rounds > 1 else ""
                if tree is not None and before is not None and name not in POSTGRES_ONLY:
                    log(f"--- {name} on {args.compare_commit} (SQLite){step}")
                    old_rows, old_result = run_before(tree, name, workdir / "before" / f"{name}-{n}.json", args)
                    rounds["before"].append(old_rows)
                    before["scenarios"].setdefault(name, []).append(old_result)
                this_round: dict[str, Any] = {}
                for engine, harness in harnesses.items():
                    log(f"--- {name} on {harness.db.title}{step}")
                    result, new_rows = run_scenario(harness, name)
                    this_round[engine] = result
                    results[engine].setdefault(name, []).append(result)
                    rounds[engine].append(new_rows)
                    if "error" in result:
                        crashed.append(f"{engine}:{name}")
                if name == "ingest" and "postgres" in rounds and (across := ingest_across_engines(this_round)):
                    rounds["postgres"][-1].append(across)
            for target, runs in rounds.items():
                if not runs:
                    continue
                merged = median_rows(runs)
                if target == "before" and before is not None:
                    before["rows"] += [asdict(row) for row in merged]
                    if any(row.metric == "CRASHED" for row in merged):
                        crashed.append(f"before:{name}")
                else:
                    rows[target] += merged
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted; stopping the processes")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for harness in harnesses.values():
            try:
                harness.close()
            except Exception as exc:
                log(f"{harness.engine}: clean-up failed: {exc}")
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    seconds = time.monotonic() - started
    load_after = loadavg()
    header = (
        f"crmsync bench{' --quick' if args.quick else ''}: figures from this run only "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}, {started_at[:19]}Z, {seconds:.0f} s,"
        f" load average {load_before} -> {load_after}{', crmsync under pyinstrument' if args.profile else ''});"
        " a missed target does not fail the run"
    )
    print(f"\n{header}")
    for engine in engines:
        where = described.get(engine, {})
        detail = ", ".join(
            str(v) for v in (where.get("server"), where.get("filesystem") and f"data on {where['filesystem']}") if v
        )
        print_table(rows[engine], f"{TITLES[engine]}{f' ({detail})' if detail else ''}:")
    comparison = []
    if before is not None:
        now_rows = [asdict(r) for r in rows.get("sqlite", [])]
        comparison = bench_compare.compare(before["rows"], now_rows, REGRESSION)
        lines = [(*line[:5], VERDICT[line[5]]) for line in comparison]
        print_grid(
            f"SQLite: {args.compare_ref} ({args.compare_commit}) and this tree, scenario by scenario in one sitting"
            f" (judged: throughput no more than {100 * REGRESSION:g} % below, CPU per operation no more than"
            f" {100 * REGRESSION:g} % above):",
            ("scenario", "metric", f"{args.compare_commit}", "now", "change", "ok"), lines,
        )  # fmt: skip
        before["comparison"] = comparison
    profiles = {label: p for harness in harnesses.values() for label, p in harness.profiles.items()}
    for label, profile in profiles.items():
        print(f"\nprofile {label}: {profile.get('html')}")
        if "top_own" in profile:
            print(
                f"  main thread sampled {profile['sampled_seconds']} s, {profile['idle_percent_of_samples']} % idle in"
                f" select; of the busy time {profile['crmsync_percent_of_busy']} % under a crmsync function (beyond"
                " __main__). Hottest crmsync frames, % of busy time, own / total:"
            )
            for entry in profile["top_own"]:
                print(f"    {entry['percent']:5.1f} % / {entry['total_percent']:5.1f} %  {entry['frame']}")
    report = {
        "started_at": started_at,
        "seconds": round(seconds, 1),
        "quick": args.quick,
        "profile": args.profile,
        "only": args.only,
        "database": args.database,
        "extra_env": dict(args.env),
        "git": git_state(),
        "machine": machine() | {"load_average_before": load_before, "load_average_after": load_after},
        "sizes": asdict(sizes),
        "note": "figures from this run only",
        "engines": {
            engine: {
                "database": described.get(engine),
                "rows": [asdict(r) for r in rows[engine]],
                "scenarios": results[engine],
            }
            for engine in engines
        },
        "compare": before,
        "profiles": profiles,
        "crashed": crashed,
        "interrupted": interrupted,
    }
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {json_path} in {seconds:.0f} s")
    if interrupted:
        return 130
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
