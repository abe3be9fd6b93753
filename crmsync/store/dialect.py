"""Where SQLite and PostgreSQL differ in the text of a statement: placeholders and row locks.

Every statement is written once, in PostgreSQL's spelling: numbered placeholders ($1, $2, ...), which
SQLite reads as ?1, ?2, ..., " FOR UPDATE" on a read that a write will follow, which SQLite does
without: its write transactions hold the database's one write lock from BEGIN IMMEDIATE on, and
' COLLATE "C"' (compare by code point, as Python does), which is how SQLite compares text anyway.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

_NUMBERED = re.compile(r"\$(\d+)")
_LOCKS = re.compile(r' FOR UPDATE( SKIP LOCKED)?| COLLATE "C"')


@functools.lru_cache(maxsize=2048)
def for_sqlite(text: str) -> str:
    """The statement in SQLite's spelling."""
    return _LOCKS.sub("", _NUMBERED.sub(r"?\1", text))


def marks(count: int, start: int = 1) -> str:
    """Placeholders for an IN list: $start, $start+1, ..."""
    return ", ".join(f"${i}" for i in range(start, start + count))


_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@functools.lru_cache(maxsize=256)
def _numbered(text: str) -> tuple[str, tuple[str, ...]]:
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _NAMED.sub(number, text), tuple(names)


def named(text: str, params: Mapping[str, Any]) -> tuple[str, ...]:
    """A statement with :name placeholders, for long ones, as (statement with $n, argument, argument, ...)."""
    sql, names = _numbered(text)
    return (sql, *(params[name] for name in names))


def named_many(text: str, rows: list[Mapping[str, Any]]) -> tuple[str, list[tuple[Any, ...]]]:
    """named() for executemany: (statement with $n, one argument tuple per row)."""
    sql, names = _numbered(text)
    return sql, [tuple(row[name] for name in names) for row in rows]
