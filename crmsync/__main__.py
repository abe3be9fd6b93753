"""Command line: python -m crmsync [--host H] [--port P]."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from aiohttp import web

from .app import create_app
from .config import Config, ConfigError
from .crm.select import check_crm
from .logs import setup_logging
from .store.engines import parse_database_url
from .store.errors import StoreError

logger = logging.getLogger("crmsync")


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (about a third more requests per second here), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    """Read settings, set up logging and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="crmsync", description="Sync contacts with a CRM.")
    parser.add_argument("--host", help="listen address (default CRMSYNC_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default CRMSYNC_PORT or 8080)")
    args = parser.parse_args(argv)
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"crmsync: {exc}", file=sys.stderr)
        return 2
    host = args.host or config.host
    port = args.port if args.port is not None else config.port
    smtp_password = config.smtp.password if config.smtp and config.smtp.password else ""
    database = parse_database_url(config.database_url)
    hubspot = config.hubspot
    hubspot_secrets = (
        (hubspot.token, hubspot.client_secret, hubspot.refresh_token, *hubspot.app_secrets) if hubspot else ()
    )
    secrets = (config.crm_client_secret, config.jwt_secret, *config.webhook_secrets, smtp_password, *database.passwords,
               *hubspot_secrets)  # fmt: skip
    setup_logging(config.log_level, config.log_file, secrets)
    try:
        check_crm(config)
    except ConfigError as exc:
        # Logged as well as said: the CRM chosen is known only once the settings are read, and logs are on.
        logger.error("crmsync_config_invalid", extra={"setting": "CRMSYNC_CRM", "reason": str(exc)})
        print(f"crmsync: {exc}", file=sys.stderr)
        return 2
    logger.info("crmsync_starting", extra={"host": host, "port": port, "db": database.safe(), "crm": config.crm})
    try:
        web.run_app(create_app(config), host=host, port=port, print=None, access_log=None, loop=_event_loop())
    except StoreError as exc:
        print(f"crmsync: cannot start: CRMSYNC_DATABASE_URL ({database.safe()}): {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"crmsync: cannot start: {exc}", file=sys.stderr)
        return 1
    logger.info("crmsync_stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
