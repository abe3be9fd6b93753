"""What scripts/bench.py and scripts/crash_test.py share: ports, secrets, child processes and their teardown.

Both run the mock CRM and crmsync as real subprocesses on free ports of 127.0.0.1, with secrets made
for the run and handed over in the environment (never on a command line), each child in its own
session (a Ctrl-C reaches the driver only, which then stops every child once) with its output in a
log file. A Children registry stops whatever is still running, newest first, whatever ends the run.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CLIENT_ID = "crmsync"
PYTHON = sys.executable


class HarnessError(Exception):
    """A run could not be carried out (a process died, a deadline passed, an API said no)."""


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def base_env() -> dict[str, str]:
    """This environment without any CRMSYNC_* / MOCK_CRM_* setting a person may have exported."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("CRMSYNC_", "MOCK_CRM_"))}


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file ("" when it cannot be read)."""
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass(frozen=True)
class Secrets:
    """The secrets of one run, shared by the mock CRM and crmsync."""

    client: str
    jwt: str
    webhook: str

    @classmethod
    def make(cls) -> Secrets:
        return cls(
            client=secrets.token_urlsafe(32),
            jwt=secrets.token_urlsafe(48),
            webhook="whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        )

    def mock_env(self, webhook_url: str, **settings: str) -> dict[str, str]:
        """The mock CRM's environment: these credentials, webhooks to webhook_url ("" for none), settings."""
        return base_env() | {
            "MOCK_CRM_CLIENT_ID": CLIENT_ID,
            "MOCK_CRM_CLIENT_SECRET": self.client,
            "MOCK_CRM_WEBHOOK_URL": webhook_url,
            "MOCK_CRM_WEBHOOK_SECRET": self.webhook,
            **settings,
        }

    def backend_env(self, database_url: str, crm_url: str, **settings: str) -> dict[str, str]:
        """crmsync's environment: the database, the CRM and these secrets; no reconcile timer unless set."""
        return base_env() | {
            "CRMSYNC_DATABASE_URL": database_url,
            "CRMSYNC_CRM_URL": crm_url,
            "CRMSYNC_CRM_CLIENT_ID": CLIENT_ID,
            "CRMSYNC_CRM_CLIENT_SECRET": self.client,
            "CRMSYNC_JWT_SECRET": self.jwt,
            "CRMSYNC_WEBHOOK_SECRET": self.webhook,
            "CRMSYNC_RECONCILE_INTERVAL": "0",
            **settings,
        }


def app_argv(module: str, port: int) -> list[str]:
    """python -m crmsync / mock_crm on 127.0.0.1:port."""
    return [PYTHON, "-m", module, "--host", HOST, "--port", str(port)]


class Child:
    """One subprocess with its output in a log file; stopped with SIGTERM (SIGINT when interrupt is set)."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], port: int, log_path: Path, cwd: Path = ROOT
    ) -> None:
        self.name, self.argv, self.env, self.port, self.log_path, self.cwd = name, argv, env, port, log_path, cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.interrupt = False  # stop with SIGINT (a profiler writes its report on SIGINT)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Child:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def died(self) -> HarnessError:
        code = self.proc.returncode if self.proc else None
        return HarnessError(f"{self.name} exited with {code}; last lines of its output:\n{tail(self.log_path)}")

    def wait_healthy(self, deadline: float = 30.0) -> Child:
        """Poll GET /healthz until it answers 200; raises HarnessError if the child dies or the deadline passes."""
        end = time.monotonic() + deadline
        while True:
            if not self.alive():
                raise self.died()
            with (
                contextlib.suppress(OSError, ValueError),
                urllib.request.urlopen(self.url + "/healthz", timeout=1.0) as resp,  # noqa: S310 (127.0.0.1)
            ):
                if resp.status == 200:
                    return self
            if time.monotonic() > end:
                problem = f"{self.name} did not answer /healthz within {deadline:.0f} s"
                raise HarnessError(f"{problem}:\n{tail(self.log_path)}")
            time.sleep(0.05)

    def sigkill(self) -> None:
        """The crash: SIGKILL, no chance to clean up, then reap it."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, grace: float = 15.0) -> int | None:
        """Signal, wait up to grace seconds, then SIGKILL; always reaps. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT if self.interrupt else signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                print(f"harness: {self.name} did not stop within {grace:.0f} s; SIGKILL", file=sys.stderr, flush=True)
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
        return self.proc.wait()


class Children:
    """Every child a run started, so that one call stops whatever is still running (newest first)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Child] = []

    def add(self, name: str, argv: list[str], env: dict[str, str], port: int, cwd: Path = ROOT) -> Child:
        """A child (not started yet) logging to <workdir>/<name>.log."""
        child = Child(name, argv, env, port, self.workdir / f"{name}.log", cwd)
        self.started.append(child)
        return child

    def stop_all(self, grace: float = 10.0) -> None:
        for child in reversed(self.started):
            if child.alive():
                with contextlib.suppress(Exception):
                    child.stop(grace)

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
