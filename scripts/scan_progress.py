"""Follow a CRM scan (a full reconcile or an import) until it is done, with a progress bar on stderr.

Usage: python scripts/scan_progress.py STATUS_URL HEADER_FILE
The header file holds the Authorization header (the token never appears on a command line).
Exits 0 when the scan is done, 1 when it stopped on an error (start it again: it resumes).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

POLL = 0.5
BAR = 30  # characters
STALLED = 30.0  # seconds with an error and no new page before giving up watching


def fetch(url: str, header: str) -> dict:
    name, _, value = header.partition(":")
    request = urllib.request.Request(url, headers={name.strip(): value.strip(), "Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 (a URL we were given)
        return json.load(reply)


def line(status: dict) -> str:
    counts = status.get("counts") or {}
    shown = ", ".join(f"{key} {value:,}" for key, value in sorted(counts.items()))
    return f"{status.get('scan', 'scan')}: {status.get('state')} {bar(status)}— page {status.get('pages', 0)}; {shown}"


def bar(status: dict) -> str:
    """[#####.....]  48% 1,200/2,500 records, from the CRM's total; nothing when the CRM gave none."""
    total, seen = status.get("total"), (status.get("counts") or {}).get("seen", 0)
    if not isinstance(total, int) or total <= 0:
        return ""
    share = 1.0 if status.get("state") == "done" else min(seen / total, 1.0)  # records may come and go meanwhile
    filled = int(share * BAR)
    return f"[{'#' * filled}{'.' * (BAR - filled)}] {share:4.0%} {seen:,}/{total:,} records "


def main(url: str, header_file: str) -> int:
    header = Path(header_file).read_text(encoding="utf-8").strip()
    last_pages, last_change = -1, time.monotonic()
    while True:
        try:
            status = fetch(url, header)
        except (urllib.error.URLError, OSError) as exc:
            print(f"\ncannot read {url}: {exc}", file=sys.stderr)
            return 1
        print(f"\r{line(status)}\033[K", end="", file=sys.stderr, flush=True)
        if status.get("state") == "done":
            print(file=sys.stderr)
            print(json.dumps(status, indent=2))
            return 0
        if status.get("pages") != last_pages:
            last_pages, last_change = status.get("pages"), time.monotonic()
        if status.get("error") and time.monotonic() - last_change > STALLED:
            print(f"\nstopped: {status['error']} (run it again: it resumes from page {last_pages})", file=sys.stderr)
            return 1
        time.sleep(POLL)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
