"""Python load generator for scripts/bench.py: one process, N concurrent loops, a fixed duration, JSON out.

The bench drives ingest and reads with wrk (scripts/bench_wrk.lua); this generator is the fallback it
keeps for signed webhooks, whose fresh HMAC per request wrk's Lua cannot compute.

    .venv/bin/python scripts/bench_load.py --mode ingest|webhook|get --url URL --config FILE
        [--duration S] [--warmup S] [--connections N] [--max-requests N]

--config names a JSON file (the harness writes it, mode 0600, so no secret is on a command line):
    ingest:  {"token": "<JWT>", "tag": "<unique run tag>"}
             POST /users with a fresh email per request.
    get:     {"token": "<JWT>", "path": "/meetings/<id>/sync_status", "tag": "..."}
             GET the same path again and again (a read-path benchmark).
    webhook: {"secret": "whsec_...", "crm_ids": [...], "tag": "<unique run tag>"}
             POST /webhook, signed per Standard Webhooks, a fresh event id, a new phone and a current
             timestamp each time, round-robin over the crm_ids.

Each loop sends one request at a time on an aiohttp session limited to --connections sockets.
Requests started during --warmup are sent but not counted. The loops stop starting requests after
--duration seconds of measurement or once --max-requests were counted. Prints one JSON object:
count, seconds, rps, p50_ms, p99_ms, max_ms, statuses, errors (exceptions by type), cpu_percent
(this process, of one core) and, for webhooks, results (the "result" field of each 200 answer).
--dump PATH also writes every counted latency, so that the harness can merge runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import math
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp


def percentile(sorted_values: list[float], share: float) -> float | None:
    """The nearest-rank percentile of an ascending list, or None when it is empty."""
    if not sorted_values:
        return None
    rank = min(max(1, math.ceil(share * len(sorted_values))), len(sorted_values))
    return sorted_values[rank - 1]


class Load:
    """Shared state of the loops: the counters, the clock and what each request sends."""

    def __init__(self, args: argparse.Namespace, config: dict[str, Any]) -> None:
        self.args = args
        self.config = config
        self.serial = itertools.count(1)
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.results: Counter[str] = Counter()
        self.started = 0.0
        self.measure_from = 0.0
        self.stop_at = 0.0
        self.last_done = 0.0
        self.tag = str(config.get("tag", "run"))
        if args.mode == "webhook":
            secret = str(config["secret"]).removeprefix("whsec_")
            self.key = base64.b64decode(secret + "=" * (-len(secret) % 4))
            self.crm_ids = list(config["crm_ids"])
            if not self.crm_ids:
                raise SystemExit("bench_load: the webhook config has no crm_ids")
        else:
            self.headers = {"Authorization": f"Bearer {config['token']}", "Content-Type": "application/json"}

    def request(self) -> tuple[str, bytes, dict[str, str]]:
        """The path, body and headers of the next request."""
        n = next(self.serial)
        if self.args.mode == "get":
            return self.config["path"], b"", self.headers
        if self.args.mode == "ingest":
            body = {
                "name": f"Bench User {n}",
                "email": f"bench-{self.tag}-{n}@example.com",
                "phone": f"+1 555 {n % 10_000_000:07d}",
            }
            return "/users", json.dumps(body).encode(), self.headers
        event_id = f"evt_bench_{self.tag}_{n}"
        stamp = int(time.time())
        payload = {
            "event_id": event_id,
            "crm_id": self.crm_ids[n % len(self.crm_ids)],
            "updated_fields": {"phone": f"+1 666 {n % 10_000_000:07d}"},
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "source": "crm",
        }
        body = json.dumps(payload).encode()
        mac = hmac.new(self.key, f"{event_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        headers = {
            "webhook-id": event_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": "v1," + base64.b64encode(mac).decode(),
            "Content-Type": "application/json",
        }
        return "/webhook", body, headers

    def counting(self) -> bool:
        return len(self.latencies) < self.args.max_requests

    async def loop(self, session: aiohttp.ClientSession) -> None:
        url = self.args.url.rstrip("/")
        webhook = self.args.mode == "webhook"
        while True:
            begin = time.perf_counter()
            if begin >= self.stop_at or not self.counting():
                return
            path, body, headers = self.request()
            counted = begin >= self.measure_from
            try:
                method = "GET" if self.args.mode == "get" else "POST"
                async with session.request(method, url + path, data=body or None, headers=headers) as resp:
                    raw = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if counted:
                    self.errors[type(exc).__name__] += 1
                    self.last_done = time.perf_counter()
                continue
            end = time.perf_counter()
            if not counted:
                continue
            self.latencies.append(end - begin)
            self.statuses[status] += 1
            self.last_done = end
            if webhook and status == 200:
                try:
                    self.results[str(json.loads(raw).get("result"))] += 1
                except (ValueError, AttributeError):
                    self.results["unparsable"] += 1

    async def run(self) -> dict[str, Any]:
        args = self.args
        connector = aiohttp.TCPConnector(limit=args.connections, limit_per_host=args.connections)
        timeout = aiohttp.ClientTimeout(total=args.timeout)
        cpu_started = time.process_time()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self.started = time.perf_counter()
            self.measure_from = self.started + args.warmup
            self.stop_at = self.measure_from + args.duration
            self.last_done = self.measure_from
            await asyncio.gather(*(self.loop(session) for _ in range(args.connections)))
        cpu_percent = 100 * (time.process_time() - cpu_started) / max(time.perf_counter() - self.started, 1e-9)
        seconds = max(self.last_done - self.measure_from, 1e-9)
        ordered = sorted(self.latencies)
        ms = [None if v is None else round(v * 1000, 2) for v in (
            percentile(ordered, 0.50), percentile(ordered, 0.99), ordered[-1] if ordered else None)]  # fmt: skip
        result: dict[str, Any] = {
            "mode": args.mode,
            "connections": args.connections,
            "duration": args.duration,
            "warmup": args.warmup,
            "count": len(ordered),
            "seconds": round(seconds, 3),
            "rps": round(len(ordered) / seconds, 1),
            "p50_ms": ms[0],
            "p99_ms": ms[1],
            "max_ms": ms[2],
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "cpu_percent": round(cpu_percent, 1),  # of one core, this process, whole run
        }
        if args.mode == "webhook":
            result["results"] = dict(self.results)
        if args.dump:
            args.dump.write_text(json.dumps([round(v * 1000, 3) for v in ordered]), encoding="utf-8")
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("ingest", "webhook", "get"), required=True)
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--config", type=Path, required=True, help="JSON file with the token or the secret")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured (default 10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds sent but not counted (default 1)")
    parser.add_argument("--connections", type=int, default=64, help="concurrent loops and sockets (default 64)")
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="stop after this many counted")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds")
    parser.add_argument("--dump", type=Path, help="also write the counted latencies (ms, ascending) as JSON here")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    result = asyncio.run(Load(args, config).run())
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
