"""A user's history: sync attempts, CRM webhook events and resolved conflicts, newest first."""

from __future__ import annotations

import json
from typing import Any

from ..db import Database, fetch_all

_HISTORY = """
SELECT 'sync_attempt' AS type, finished_at AS at, id AS seq,
       json_object('attempt', attempt, 'operation', operation, 'started_at', started_at, 'finished_at', finished_at,
                   'duration_ms', duration_ms, 'outcome', outcome, 'http_status', http_status, 'error', error) AS data
  FROM sync_attempts WHERE user_id = :id
UNION ALL
SELECT 'webhook_event', received_at, rowid,
       json_object('event_id', id, 'crm_id', crm_id, 'source', source, 'event_timestamp', event_timestamp,
                   'result', result, 'detail', detail)
  FROM webhook_events WHERE user_id = :id
UNION ALL
SELECT 'conflict', resolved_at, id,
       json_object('field', field, 'local_value', local_value, 'crm_value', crm_value, 'base_value', base_value,
                   'origin', origin, 'winner', 'crm')
  FROM conflicts WHERE user_id = :id
ORDER BY at DESC, seq DESC
LIMIT :limit
"""


async def history(db: Database, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """Everything that happened to the user's sync, newest first."""
    rows = await fetch_all(db.reader, _HISTORY, {"id": user_id, "limit": limit})
    return [{"type": row["type"], "at": row["at"], **json.loads(row["data"])} for row in rows]
