"""A throwaway PostgreSQL cluster from the installed server binaries, for tests, the benchmark and local runs.

    python scripts/pgcluster.py start DIR [--port N] [--durable]   initdb if DIR is new, start, print the URL
    python scripts/pgcluster.py stop DIR                            fast shutdown, waits until the server is gone
    python scripts/pgcluster.py url DIR                             the running cluster's URL (exit 1 if stopped)
    python scripts/pgcluster.py bindir                              the server binaries' directory (exit 1 if none)

The cluster trusts every local connection (user postgres, no password) and listens on 127.0.0.1 and on a
unix socket in DIR. Without --durable it trades crash safety for speed (fsync, synchronous_commit and
full_page_writes off): fine for data that dies with the test run, wrong for a benchmark of real writes.
PostgreSQL refuses to run as root; as root the server runs as the `postgres` system user, which owns DIR.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from types import TracebackType

SERVER_USER = "postgres"
LOG_NAME = "server.log"
SOCKET_PATH_MAX = 107  # sun_path is 108 bytes with the terminating NUL
FAST = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "autovacuum=off")
DURABLE = ("-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "full_page_writes=on")


class PgUnavailable(RuntimeError):
    """No PostgreSQL server can be run on this machine (tests skip on this, except under CI)."""


def find_bindir() -> Path:
    """The directory holding initdb and pg_ctl: pg_config's, else the newest /usr/lib/postgresql/*/bin."""
    candidates = []
    if pg_config := shutil.which("pg_config"):
        # libpq-dev alone ships pg_config too, so its bindir may hold no server: checked below like the rest.
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out:
            candidates.append(Path(out))
    installed = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(installed, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)], reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PgUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl): none in pg_config --bindir or /usr/lib/postgresql/*/bin;"
        " install Debian's postgresql package (./run.sh test does so when run as root)"
    )


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_free(port: int) -> bool:
    """True when a server could bind 127.0.0.1:port now."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _server_user() -> pwd.struct_passwd | None:
    """The account the server runs as: None for the current user, the postgres user when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PgUnavailable(
            f"PostgreSQL refuses to run as root and there is no '{SERVER_USER}' system user to run it as;"
            f" Debian's postgresql package creates it (or: useradd --system --user-group {SERVER_USER})"
        ) from None


class PgCluster:
    """One cluster in one data directory; start() reuses the directory (and a running server) when there is one."""

    def __init__(self, datadir: str | os.PathLike[str], port: int | None = None, durable: bool = False) -> None:
        self.datadir = Path(datadir).absolute()
        self.port = port
        self.durable = durable
        self.log_file = self.datadir / LOG_NAME

    @property
    def url(self) -> str:
        """The superuser's URL to the postgres database over TCP."""
        if self.port is None:
            raise RuntimeError(f"the cluster in {self.datadir} has not been started")
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/postgres"

    def __enter__(self) -> PgCluster:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def running_port(self) -> int | None:
        """The port of the server running on this data directory, None when none runs."""
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
            # A pid file left by a killed server may name a dead process, a zombie, or by now another program.
            name, rest = Path(f"/proc/{pid}/stat").read_text().split(" (", 1)[1].rsplit(") ", 1)
        except (OSError, ValueError, IndexError):
            return None
        return port if name in ("postgres", "postmaster") and not rest.startswith("Z") else None

    def is_running(self) -> bool:
        """True while a server runs on this data directory."""
        return self.running_port() is not None

    def start(self) -> str:
        """Start the server (initdb first when the directory is new) and return its URL; as it is when it runs."""
        if (running := self.running_port()) is not None:
            self.port = running
            return self.url
        if len(str(self.datadir / ".s.PGSQL.65535")) > SOCKET_PATH_MAX:
            raise ValueError(f"{self.datadir} is too long a path for the server's unix socket; choose a shorter one")
        bindir = find_bindir()
        user = _server_user()
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb(bindir, user)
        fixed = self.port is not None
        for attempt in range(3):
            port = self.port if fixed else self._pick_port(attempt)
            options = ["-p", str(port), *(DURABLE if self.durable else FAST)]
            cmd = [str(bindir / "pg_ctl"), "start", "-D", str(self.datadir), "-l", str(self.log_file)]
            result = self._run(user, [*cmd, "-w", "-t", "60", "-s", "-o", " ".join(options)])
            if result.returncode == 0:
                self.port = port
                return self.url
            log = self._log_tail()
            # Another process may take the free port between the probe and the bind: try another one.
            if fixed or "could not bind" not in log or attempt == 2:
                raise RuntimeError(f"PostgreSQL did not start in {self.datadir}: {result.stderr.strip()}\n{log}")
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Fast shutdown (roll back open transactions, disconnect clients) and wait until the server is gone."""
        if not self.is_running():
            return
        cmd = [str(find_bindir() / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "fast", "-w", "-t", "60", "-s"]
        result = self._run(_server_user(), cmd)
        if result.returncode != 0 and self.is_running():
            raise RuntimeError(f"PostgreSQL did not stop in {self.datadir}: {result.stderr.strip()}")

    def _pick_port(self, attempt: int) -> int:
        """The port of the last start when it is free (a stable URL across restarts), else a free one."""
        with contextlib.suppress(OSError):
            opts = (self.datadir / "postmaster.opts").read_text()
            if attempt == 0 and (last := re.search(r'"-p" "(\d+)"', opts)) and port_free(int(last[1])):
                return int(last[1])
        return free_port()

    def _initdb(self, bindir: Path, user: pwd.struct_passwd | None) -> None:
        """Create the cluster: trust auth, UTF8, no fsync of the new files, our settings appended."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        if user is not None:
            self._hand_to(user)
        locale = "C.UTF-8" if _has_c_utf8() else "C"
        cmd = [str(bindir / "initdb"), "-D", str(self.datadir), "-U", SERVER_USER, "--auth=trust", "-E", "UTF8"]
        result = self._run(user, [*cmd, f"--locale={locale}", "--no-sync"])
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed in {self.datadir}: {result.stderr.strip()}")
        socket_dir = str(self.datadir).replace("'", "''")
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# scripts/pgcluster.py: a throwaway cluster (port and durability are given at each start)\n"
                f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{socket_dir}'\n"
                "max_connections = 200\n"
            )

    def _hand_to(self, user: pwd.struct_passwd) -> None:
        """Give the data directory to the server user, which must also be able to reach it."""
        for parent in self.datadir.parents:
            st = parent.stat()
            if not (
                st.st_mode & 0o001
                or (st.st_uid == user.pw_uid and st.st_mode & 0o100)
                or (st.st_gid == user.pw_gid and st.st_mode & 0o010)
            ):
                raise ValueError(
                    f"the {SERVER_USER} user cannot reach {self.datadir}: {parent} is mode {oct(st.st_mode & 0o777)}"
                    " and not its own; choose a directory it can reach (e.g. under /tmp)"
                )
        os.chown(self.datadir, user.pw_uid, user.pw_gid)
        self.datadir.chmod(0o700)

    def _run(self, user: pwd.struct_passwd | None, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        """Run a server tool, as the server user when we are root; from / so it can always read its cwd."""
        if user is not None:
            cmd = ["runuser", "-u", user.pw_name, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd="/", stdin=subprocess.DEVNULL)

    def _log_tail(self, lines: int = 20) -> str:
        """The end of the server log, for an error message."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return f"(no log at {self.log_file})"


def _has_c_utf8() -> bool:
    """True when the C.UTF-8 locale exists (lower() and upper() then work beyond ASCII)."""
    if not (locale := shutil.which("locale")):
        return False
    names = subprocess.run([locale, "-a"], capture_output=True, text=True, check=False).stdout.split()
    return any(name.lower().replace("-", "") == "c.utf8" for name in names)


def main(argv: list[str] | None = None) -> int:
    """The command line: start, stop, url, bindir."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="initdb if new, start, print the URL")
    start.add_argument("datadir")
    start.add_argument("--port", type=int, default=None, help="default: the last start's port if free, else a free one")
    start.add_argument("--durable", action="store_true", help="fsync and synchronous_commit on (benchmarks)")
    for name, text in (("stop", "fast shutdown"), ("url", "print the running cluster's URL")):
        commands.add_parser(name, help=text).add_argument("datadir")
    commands.add_parser("bindir", help="print the server binaries' directory")
    args = parser.parse_args(argv)
    try:
        if args.command == "bindir":
            print(find_bindir())
            return 0
        cluster = PgCluster(args.datadir, port=getattr(args, "port", None), durable=getattr(args, "durable", False))
        if args.command == "start":
            print(cluster.start())
        elif args.command == "stop":
            cluster.stop()
        elif (port := cluster.running_port()) is not None:
            cluster.port = port
            print(cluster.url)
        else:
            print(f"pgcluster: no server runs in {cluster.datadir}", file=sys.stderr)
            return 1
    except (PgUnavailable, RuntimeError, ValueError) as exc:
        print(f"pgcluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
