"""GET /cluster: the replicas serving this database, as their heartbeats last said."""

from __future__ import annotations

from aiohttp import web

from ..keys import db_key, membership_key, replica_key
from ..render import json_response


async def cluster(request: web.Request) -> web.Response:
    """Live replicas with their last heartbeat, jobs running and share of the CRM's rate limit."""
    membership = request.app[membership_key]
    await membership.beat()  # fresh, rather than up to a heartbeat old
    return json_response(
        {
            "replica": request.app[replica_key],
            "database": request.app[db_key].engine,
            "replicas": [replica.public() for replica in membership.live],
        }
    )
