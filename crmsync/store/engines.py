"""CRMSYNC_DATABASE_URL: which engine, where, and opening it."""

from __future__ import annotations

from pathlib import Path

import attrs
from yarl import URL

from .database import Database
from .postgres import PostgresDatabase
from .sqlite import SqliteDatabase

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")


@attrs.frozen
class DatabaseUrl:
    """A parsed database URL; repr and safe() never show a password."""

    engine: str
    path: Path | None = None
    dsn: str | None = attrs.field(default=None, repr=False)

    @property
    def passwords(self) -> tuple[str, ...]:
        """Every password in the URL, in its user part or as a password parameter (for scrubbing logs)."""
        if not self.dsn:
            return ()
        url = URL(self.dsn)
        return tuple(p for p in (url.password, *url.query.getall("password", ())) if p)

    def safe(self) -> str:
        """The URL with any password replaced, for logs, /readyz and error messages."""
        if self.engine == "sqlite":
            return f"{SQLITE_PREFIX}{self.path}"
        url = URL(self.dsn or "")
        if url.password:
            url = url.with_password("***")
        if "password" in url.query:  # libpq's password parameter, which the driver also reads
            url = url.with_query([(k, "***" if k == "password" else v) for k, v in url.query.items()])
        return str(url)


def parse_database_url(text: str) -> DatabaseUrl:
    """Read sqlite:///relative/path, sqlite:////absolute/path or postgresql://user:password@host:port/db.

    Raises ValueError with a reason that never includes the URL itself (it may hold a password).
    """
    if text.startswith(SQLITE_PREFIX):
        path = text[len(SQLITE_PREFIX) :]
        if not path or path.endswith("/"):
            raise ValueError("a sqlite URL needs a file path, as in sqlite:///data/crmsync.db")
        return DatabaseUrl("sqlite", path=Path(path))
    try:
        url = URL(text)
    except ValueError:
        raise ValueError("it is not a URL") from None
    if url.scheme not in POSTGRES_SCHEMES:
        raise ValueError("it must start with sqlite:///, postgresql:// or postgres://")
    if not url.host:
        raise ValueError("a postgresql URL needs a host, as in postgresql://user:password@localhost:5432/crmsync")
    try:
        url.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        raise ValueError("its port is not a number") from None
    return DatabaseUrl("postgres", dsn=text)


async def open_database(url: DatabaseUrl, pool_size: int = 10) -> Database:
    """Open (and migrate) the database the URL names."""
    if url.engine == "sqlite":
        assert url.path is not None
        return await SqliteDatabase.open(url.path)
    assert url.dsn is not None
    return await PostgresDatabase.open(url.dsn, url.safe(), pool_size)
