"""Which CRM adapter CRMSYNC_CRM names, built over the shared transport."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from ..config import Config, ConfigError, HubSpotSettings
from .adapter import CrmAdapter
from .hubspot.adapter import HubSpotAdapter
from .hubspot.limits import read_rate_limit as hubspot_rate_limit
from .hubspot.limits import throttled
from .mock.adapter import MockAdapter
from .mock.limits import read_rate_limit
from .transport import TokenRequest, Transport


def check_crm(config: Config) -> None:
    """Raise ConfigError when the configured CRM lacks its settings (checked at start-up, before serving)."""
    if config.crm == "hubspot" and config.hubspot is None:
        raise ConfigError("CRMSYNC_CRM=hubspot needs the CRMSYNC_HUBSPOT_* settings")


def build_adapter(config: Config, session: aiohttp.ClientSession) -> CrmAdapter:
    """The adapter for config.crm, sending through one transport on the app's session."""
    check_crm(config)
    tuning: dict[str, Any] = {
        "attempts": config.crm_attempts,
        "backoff": config.crm_backoff,
        "max_rate_wait": config.crm_max_rate_wait,
        "token_timeout": config.crm_token_timeout,
    }
    if config.hubspot is not None:
        return hubspot_adapter(session, config.hubspot, **tuning)
    return mock_adapter(
        session, config.crm_url, config.crm_client_id, config.crm_client_secret, config.webhook_keys, **tuning
    )


def mock_adapter(
    session: aiohttp.ClientSession, url: str, client_id: str, client_secret: str, webhook_keys: Sequence[bytes] = (),
    **tuning: Any,
) -> MockAdapter:  # fmt: skip
    """The mock CRM's adapter: OAuth 2.0 client credentials at /crm/token, X-RateLimit-* headers."""
    basic = {"Authorization": aiohttp.encode_basic_auth(client_id, client_secret)}
    token_request = TokenRequest("/crm/token", {"grant_type": "client_credentials"}, basic)
    return MockAdapter(Transport(session, url, token_request, read_rate_limit, **tuning), webhook_keys)


def hubspot_adapter(session: aiohttp.ClientSession, settings: HubSpotSettings, **tuning: Any) -> HubSpotAdapter:
    """HubSpot's adapter: a static token, or OAuth 2.0 access tokens from the refresh token (30 minutes each,
    refreshed before they expire, one refresh in flight); X-HubSpot-RateLimit-* headers; 429s by policyName."""
    auth: TokenRequest | str = settings.token
    if not settings.token:
        form = {"grant_type": "refresh_token", "client_id": settings.client_id,
                "client_secret": settings.client_secret, "refresh_token": settings.refresh_token}  # fmt: skip
        auth = TokenRequest("/oauth/v1/token", form, settings="CRMSYNC_HUBSPOT_CLIENT_ID/SECRET/REFRESH_TOKEN")
    zone = ZoneInfo(settings.timezone)

    def throttle(body: Any, headers: Any) -> Any:
        return throttled(body, headers, datetime.now(UTC), zone)

    transport = Transport(session, settings.url, auth, hubspot_rate_limit, throttle=throttle, **tuning)
    return HubSpotAdapter(transport)
