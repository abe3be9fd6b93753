"""`python -m mock_crm` / `mock-crm`: run the mock CRM (or, with --dialect hubspot, the HubSpot fake) on 127.0.0.1."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import attrs
from aiohttp import web

from mock_crm.app import create_app
from mock_crm.config import ConfigError, MockConfig
from mock_crm.hubspot.app import create_app as create_hubspot_app
from mock_crm.hubspot.config import HubSpotConfig
from mock_crm.logs import setup_logging

logger = logging.getLogger("mock_crm")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read --host and --port (they override MOCK_CRM_HOST / MOCK_CRM_PORT)."""
    parser = argparse.ArgumentParser(prog="mock-crm", description="Run the mock CRM.")
    parser.add_argument("--host", help="address to listen on (default MOCK_CRM_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default MOCK_CRM_PORT or 8081)")
    parser.add_argument(
        "--dialect",
        choices=("mock", "hubspot"),
        default="mock",
        help="which CRM to serve: the mock (default) or the HubSpot fake (settings from HUBSPOT_FAKE_*)",
    )
    return parser.parse_args(argv)


def load_config(argv: Sequence[str] | None, env: dict[str, str]) -> MockConfig | HubSpotConfig:
    """Build the config of the chosen dialect from the environment, then apply command-line overrides."""
    args = _parse_args(argv)
    config: MockConfig | HubSpotConfig = (HubSpotConfig if args.dialect == "hubspot" else MockConfig).from_env(env)
    overrides = {name: value for name, value in (("host", args.host), ("port", args.port)) if value is not None}
    return attrs.evolve(config, **overrides) if overrides else config


def main(argv: Sequence[str] | None = None) -> None:
    """Run until Ctrl-C or SIGTERM; exit 2 with one line on a bad setting."""
    try:
        config = load_config(argv, dict(os.environ))
    except ConfigError as exc:
        print(f"mock-crm: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        setup_logging(config.log_level, config.log_file)
    except OSError as exc:
        print(f"mock-crm: cannot open MOCK_CRM_LOG_FILE: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

    def started(_banner: str) -> None:
        """Replace aiohttp's banner with a JSON line, logged once the socket is listening."""
        dialect = "hubspot" if isinstance(config, HubSpotConfig) else "mock"
        logger.info("mock_crm_started", extra={"host": config.host, "port": config.port, "dialect": dialect})

    try:
        web.run_app(
            create_hubspot_app(config) if isinstance(config, HubSpotConfig) else create_app(config),
            host=config.host,
            port=config.port,
            print=started,
            access_log=None,
            shutdown_timeout=5,
        )
    except OSError as exc:
        logger.error("mock_crm_listen_failed", extra={"host": config.host, "port": config.port, "error": str(exc)})
        raise SystemExit(1) from None
    logger.info("mock_crm_stopped")


if __name__ == "__main__":
    main()
