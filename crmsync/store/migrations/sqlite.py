"""SQLite's versioned schema: each entry runs once, in order, inside one transaction (BEGIN IMMEDIATE)."""

from __future__ import annotations

import logging
import sqlite3

import aiosqlite

from ..database import Connection

logger = logging.getLogger(__name__)

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE accounts (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL
        );

        -- seq gives a stable listing order and cursor; id is the public UUID.
        CREATE TABLE users (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            email TEXT NOT NULL UNIQUE,
            phone TEXT NOT NULL,
            sync_status TEXT NOT NULL CHECK (sync_status IN ('pending', 'synced', 'failed')),
            crm_id TEXT UNIQUE,
            last_error TEXT,
            sync_attempts INTEGER NOT NULL DEFAULT 0,
            next_retry_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_synced_at TEXT,
            -- The body of the CRM create, frozen so a retried create replays the same idempotent request.
            create_body TEXT,
            create_gen INTEGER NOT NULL DEFAULT 0,
            -- Last values both sides agreed on: the base of the three-way merge.
            synced_name TEXT,
            synced_email TEXT,
            synced_phone TEXT,
            crm_updated_at TEXT
        );
        CREATE INDEX users_status ON users (sync_status, seq);

        -- The transactional outbox: one row per (kind, entity), reused for every new change.
        -- generation moves on each new change, so a worker can tell its push went stale.
        CREATE TABLE sync_jobs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('queued', 'done', 'failed')),
            generation INTEGER NOT NULL DEFAULT 1,
            attempts INTEGER NOT NULL DEFAULT 0,
            run_after TEXT,
            last_error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (kind, entity_id)
        );
        CREATE INDEX sync_jobs_open ON sync_jobs (state) WHERE state = 'queued';

        CREATE TABLE sync_attempts (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            operation TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            duration_ms REAL NOT NULL,
            outcome TEXT NOT NULL,
            http_status INTEGER,
            error TEXT
        );
        CREATE INDEX sync_attempts_user ON sync_attempts (user_id, id);
        """,
    ),
    (
        2,
        """
        -- When the CRM last changed each field, so out-of-order webhooks converge field by field.
        ALTER TABLE users ADD COLUMN crm_name_at TEXT;
        ALTER TABLE users ADD COLUMN crm_email_at TEXT;
        ALTER TABLE users ADD COLUMN crm_phone_at TEXT;
        CREATE INDEX users_crm_id ON users (crm_id) WHERE crm_id IS NOT NULL;

        CREATE TABLE webhook_events (
            id TEXT PRIMARY KEY,
            crm_id TEXT NOT NULL,
            user_id TEXT,
            source TEXT,
            event_timestamp TEXT,
            received_at TEXT NOT NULL,
            result TEXT NOT NULL,
            detail TEXT,
            payload TEXT NOT NULL
        );
        CREATE INDEX webhook_events_user ON webhook_events (user_id, received_at);

        -- Every field where a local change met a different CRM change; the CRM's value won.
        CREATE TABLE conflicts (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL,
            field TEXT NOT NULL,
            local_value TEXT,
            crm_value TEXT,
            base_value TEXT,
            origin TEXT NOT NULL,
            resolved_at TEXT NOT NULL
        );
        CREATE INDEX conflicts_user ON conflicts (user_id, id);

        CREATE TABLE checkpoints (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        """,
    ),
    (
        3,
        """
        -- A meeting belongs to the account that created it; its sync runs in three tracked stages.
        CREATE TABLE meetings (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            account_id TEXT NOT NULL REFERENCES accounts (id),
            title TEXT NOT NULL,
            starts_at TEXT NOT NULL,
            ends_at TEXT,
            crm_meeting_id TEXT,
            in_progress_sync_status INTEGER CHECK (in_progress_sync_status IN (1, 2, 3)),
            last_sync_success INTEGER,
            last_sync_at TEXT,
            last_sync_error TEXT,
            contacts_started_at TEXT,
            contacts_finished_at TEXT,
            meeting_started_at TEXT,
            meeting_finished_at TEXT,
            associations_started_at TEXT,
            associations_finished_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX meetings_account ON meetings (account_id, seq);

        CREATE TABLE meeting_attendees (
            meeting_id TEXT NOT NULL REFERENCES meetings (id),
            user_id TEXT NOT NULL REFERENCES users (id),
            position INTEGER NOT NULL,
            PRIMARY KEY (meeting_id, user_id)
        );
        """,
    ),
    (
        4,
        """
        -- Failed sign-ins per key (a hashed email or client address) and time slice, shared by every replica.
        -- bucket is the slice's start in Unix milliseconds; a row older than the window is pruned.
        CREATE TABLE signin_failures (
            key TEXT NOT NULL,
            bucket INTEGER NOT NULL,
            failures INTEGER NOT NULL,
            PRIMARY KEY (key, bucket)
        ) WITHOUT ROWID;
        CREATE INDEX signin_failures_bucket ON signin_failures (bucket);
        """,
    ),
    (
        5,
        """
        -- Values we sent to the CRM whose outcome we never learned (a lost reply): {field: [values]}.
        -- A CRM record showing one of them shows our own write, not a person's change.
        ALTER TABLE users ADD COLUMN push_intents TEXT;
        -- When what we know of the CRM record last changed (a webhook, a push's answer, a read), by our
        -- clock: a record whose read began after that moment is the whole truth.
        ALTER TABLE users ADD COLUMN crm_news_at TEXT;
        -- Crashes of a job's handler (bugs, surprises): a job that crashes 3 times is failed, not retried.
        ALTER TABLE sync_jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
        -- The user whose push must land before this job can succeed (an email it still holds in the CRM).
        ALTER TABLE sync_jobs ADD COLUMN waits_for TEXT;
        CREATE INDEX sync_jobs_waits_for ON sync_jobs (waits_for) WHERE waits_for IS NOT NULL;
        CREATE INDEX users_synced_email ON users (synced_email) WHERE synced_email IS NOT NULL;
        """,
    ),
    (
        6,
        """
        -- The retention prune deletes the oldest events first; without this each batch scans the table.
        CREATE INDEX webhook_events_received ON webhook_events (received_at);
        """,
    ),
    (
        7,
        """
        -- Jobs are claimed from the table by one replica at a time, under a lease it extends while the
        -- work runs; lease_token moves on every claim, so an outcome from a lease lost meanwhile is dropped.
        ALTER TABLE sync_jobs ADD COLUMN lease_owner TEXT;
        ALTER TABLE sync_jobs ADD COLUMN lease_until TEXT;
        ALTER TABLE sync_jobs ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
        -- A queued job is due at run_after (never NULL): the claim reads due jobs in that order.
        UPDATE sync_jobs SET run_after = updated_at WHERE run_after IS NULL;
        DROP INDEX sync_jobs_open;
        CREATE INDEX sync_jobs_due ON sync_jobs (run_after) WHERE state = 'queued';
        CREATE INDEX sync_jobs_lease_owner ON sync_jobs (lease_owner) WHERE lease_owner IS NOT NULL;

        -- The processes serving this database, each heartbeating while it lives.
        CREATE TABLE replicas (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            address TEXT,
            started_at TEXT NOT NULL,
            heartbeat_at TEXT NOT NULL,
            jobs_running INTEGER NOT NULL DEFAULT 0,
            jobs_done INTEGER NOT NULL DEFAULT 0,
            subscribers INTEGER NOT NULL DEFAULT 0,
            pacer_share REAL
        );

        -- Work only one replica may do at a time (the reconcile sweep), held until `until`.
        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            until TEXT NOT NULL
        );
        """,
    ),
    (
        8,
        """
        -- A contact's whole life: 'deleting' while its CRM record is deleted, then a tombstone (id, crm_id,
        -- deleted_at; no name, email or phone). SQLite cannot change a CHECK or a NOT NULL in place: the
        -- table is rebuilt (foreign keys are off while migrations run, and checked before the commit).
        CREATE TABLE users_v8 (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            name TEXT,
            email TEXT UNIQUE,
            phone TEXT,
            sync_status TEXT NOT NULL CHECK (sync_status IN ('pending', 'synced', 'failed', 'deleting')),
            crm_id TEXT UNIQUE,
            last_error TEXT,
            sync_attempts INTEGER NOT NULL DEFAULT 0,
            next_retry_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_synced_at TEXT,
            create_body TEXT,
            create_gen INTEGER NOT NULL DEFAULT 0,
            synced_name TEXT,
            synced_email TEXT,
            synced_phone TEXT,
            crm_updated_at TEXT,
            crm_name_at TEXT,
            crm_email_at TEXT,
            crm_phone_at TEXT,
            push_intents TEXT,
            crm_news_at TEXT,
            -- When the CRM record was first linked (a full reconcile judges only users linked before it began).
            linked_at TEXT,
            -- A person asked to delete the contact; deleted_at: the CRM record is gone and only a tombstone stays.
            delete_requested_at TEXT,
            deleted_at TEXT,
            -- The crm_id the CRM deleted, kept while the user waits for a person to choose.
            crm_deleted_id TEXT
        );
        INSERT INTO users_v8 (seq, id, name, email, phone, sync_status, crm_id, last_error, sync_attempts,
            next_retry_at, created_at, updated_at, last_synced_at, create_body, create_gen, synced_name,
            synced_email, synced_phone, crm_updated_at, crm_name_at, crm_email_at, crm_phone_at, push_intents,
            crm_news_at, linked_at)
        SELECT seq, id, name, email, phone, sync_status, crm_id, last_error, sync_attempts, next_retry_at,
            created_at, updated_at, last_synced_at, create_body, create_gen, synced_name, synced_email,
            synced_phone, crm_updated_at, crm_name_at, crm_email_at, crm_phone_at, push_intents, crm_news_at,
            CASE WHEN crm_id IS NOT NULL THEN COALESCE(last_synced_at, updated_at) END
        FROM users;
        DROP TABLE users;
        ALTER TABLE users_v8 RENAME TO users;
        CREATE INDEX users_status ON users (sync_status, seq);
        CREATE INDEX users_crm_id ON users (crm_id) WHERE crm_id IS NOT NULL;
        CREATE INDEX users_synced_email ON users (synced_email) WHERE synced_email IS NOT NULL;

        -- What happened to a contact beyond pushes, webhooks and conflicts: deleted, deleted in the CRM,
        -- created in the CRM, linked, re-created.
        CREATE TABLE user_events (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            crm_id TEXT,
            detail TEXT
        );
        CREATE INDEX user_events_user ON user_events (user_id, id);
        """,
    ),
    (
        9,
        """
        -- The CRM records a full reconcile has seen so far (a record no longer seen is deleted in the CRM).
        CREATE TABLE scan_seen (
            scan TEXT NOT NULL,
            crm_id TEXT NOT NULL,
            PRIMARY KEY (scan, crm_id)
        );
        """,
    ),
)


async def apply(conn: Connection, raw: aiosqlite.Connection) -> None:
    """Apply the migrations this database has not had yet, all in one write transaction.

    Foreign keys are off meanwhile (a migration may rebuild a table others refer to) and every
    reference is checked before the commit.
    """
    await raw.execute("PRAGMA foreign_keys = OFF")  # has no effect inside a transaction: set before it
    await raw.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = await conn.fetchval("SELECT MAX(version) FROM schema_version") or 0
        for version, script in MIGRATIONS:
            if version > current:
                for statement in _statements(script):
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
                logger.info("schema_migrated", extra={"version": version, "engine": "sqlite"})
        if broken := await conn.fetch("PRAGMA foreign_key_check"):
            raise RuntimeError(f"a migration broke {len(broken)} references, first in table {broken[0][0]}")
        await raw.commit()
    except BaseException:
        await raw.rollback()
        raise
    finally:
        await raw.execute("PRAGMA foreign_keys = ON")


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit behind our back)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return [s for s in statements if s]
