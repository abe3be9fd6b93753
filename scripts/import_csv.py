"""Load contacts from a CSV file (a name,email,phone header) through POST /users/batch, a page at a time.

Usage: python scripts/import_csv.py CRMSYNC_URL HEADER_FILE FILE.csv
The header file holds the Authorization header (the token never appears on a command line).
A progress bar goes to stderr; the summary (created, linked, rejected with line numbers) to stdout.
Exits 0 when every row was created or linked, 1 when rows were rejected or the import stopped, 2 when
the file cannot be read. Running it again is safe: rows already loaded count as linked.
"""

from __future__ import annotations

import csv
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PAGE = 1000  # the most POST /users/batch takes
COLUMNS = ("name", "email", "phone")
TRIES = 8  # per page, for a 503 / 429 or a dropped connection
BAR = 30


class Stop(Exception):
    """The import cannot go on (refused token, a 4xx for a whole page, the server gone)."""


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str] | str]]:
    """(line number, contact) for each data row, or (line number, reason) for a row that cannot be one."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [name.strip().lower() for name in next(reader, [])]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ValueError(
                f"the header (line 1) has no {', '.join(missing)} column; it must name {','.join(COLUMNS)}"
            )
        where = {c: header.index(c) for c in COLUMNS}
        line = reader.line_num + 1
        for row in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            if len(row) != len(header):
                yield start, f"has {len(row)} fields; the header has {len(header)}"
                continue
            yield start, {c: row[i] for c, i in where.items()}


def count_rows(path: Path) -> int:
    return sum(1 for _ in read_rows(path))


def post_page(url: str, header: str, items: list[dict[str, str]]) -> list[dict]:
    """POST one page; its per-item results. Waits out a 503 or 429, tries again after a dropped connection."""
    name, _, value = header.partition(":")
    body = json.dumps(items).encode()
    for attempt in range(1, TRIES + 1):
        request = urllib.request.Request(  # noqa: S310 (the URL we were given)
            f"{url}/users/batch", data=body, method="POST",
            headers={name.strip(): value.strip(), "Content-Type": "application/json", "Accept": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:  # noqa: S310
                return json.load(reply)["items"]
        except urllib.error.HTTPError as exc:
            answer = _json(exc.read())
            if exc.code not in (429, 503) or attempt == TRIES:
                raise Stop(_refusal(exc.code, answer)) from None
            time.sleep(min(float(exc.headers.get("Retry-After") or 1), 30))
        except (urllib.error.URLError, OSError) as exc:
            if attempt == TRIES:
                raise Stop(f"cannot reach {url}: {exc}") from None
            time.sleep(min(2**attempt / 4, 10))
    raise AssertionError("unreachable")


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _refusal(status: int, answer: dict) -> str:
    text = f"HTTP {status}: {answer.get('message') or answer.get('error') or 'no reason given'}"
    if status == 401:
        text += " (run scripts/sign_in.sh EMAIL PASSWORD)"
    return text


def reason(result: dict) -> str:
    fields = result.get("fields") or {}
    return "; ".join(f"{field} {why}" for field, why in fields.items()) or result.get("message", "refused")


class Progress:
    """The bar on stderr, redrawn at most ten times a second."""

    def __init__(self, total: int) -> None:
        self.total, self.started, self.drawn = total, time.monotonic(), 0.0
        self.counts = {"created": 0, "linked": 0, "rejected": 0}

    def draw(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.drawn < 0.1:
            return
        self.drawn = now
        share = done / self.total if self.total else 1.0
        filled = int(share * BAR)
        rate = done / max(now - self.started, 1e-9)
        counts = " · ".join(f"{name} {n:,}" for name, n in self.counts.items())
        bar = "#" * filled + "." * (BAR - filled)
        line = f"[{bar}] {share:4.0%} {done:,}/{self.total:,} rows · {counts} · {rate:,.0f} rows/s"
        print(f"\r{line}\033[K", end="\n" if final else "", file=sys.stderr, flush=True)


class Importer:
    """Sends rows a page at a time and tallies what became of each."""

    def __init__(self, url: str, header: str, progress: Progress) -> None:
        self.url, self.header, self.progress = url, header, progress
        self.page: list[tuple[int, dict[str, str]]] = []
        self.rejected: list[tuple[int, str]] = []
        self.done = 0

    def add(self, line: int, row: dict[str, str] | str) -> None:
        """Queue a row (a string: the reason it cannot be one); send the page once it is full."""
        if isinstance(row, str):
            self._tally(line, "rejected", row)
        else:
            self.page.append((line, row))
        if len(self.page) == PAGE:
            self.flush()
        self.progress.draw(self.done)

    def flush(self) -> None:
        """Send what is queued."""
        if not self.page:
            return
        results = post_page(self.url, self.header, [row for _, row in self.page])
        for (line, _), result in zip(self.page, results, strict=True):
            if result["status"] == 201:
                self._tally(line, "created")
            elif result.get("error") == "duplicate_email":
                self._tally(line, "linked")
            else:
                self._tally(line, "rejected", reason(result))
        self.page = []

    def _tally(self, line: int, outcome: str, why: str = "") -> None:
        self.progress.counts[outcome] += 1
        self.done += 1
        if why:
            self.rejected.append((line, why))


def main(url: str, header_file: str, csv_file: str) -> int:
    header = Path(header_file).read_text(encoding="utf-8").strip()
    path = Path(csv_file)
    try:
        progress = Progress(count_rows(path))
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        print(f"cannot read {csv_file}: {exc}", file=sys.stderr)
        return 2
    importer, stopped = Importer(url, header, progress), ""
    try:
        for line, row in read_rows(path):
            importer.add(line, row)
        importer.flush()
    except Stop as exc:
        stopped = f"stopped at line {importer.page[0][0]}: {exc} (run it again: rows already loaded count as linked)"
    progress.draw(importer.done, final=True)
    counts, seconds = progress.counts, time.monotonic() - progress.started
    print(f"created {counts['created']:,}, linked {counts['linked']:,}, rejected {counts['rejected']:,}"
          f" (of {progress.total:,} rows in {seconds:.1f} s)")  # fmt: skip
    for line, why in sorted(importer.rejected):
        print(f"line {line}: {why}")
    if stopped:
        print(stopped, file=sys.stderr)
    return 1 if stopped or importer.rejected else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
