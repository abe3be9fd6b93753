"""HubSpot fake settings: an attrs value built from keywords (tests) or from HUBSPOT_FAKE_* variables."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from mock_crm.config import LOG_LEVELS, ConfigError, _check, _is_http_url

PREFIX = "HUBSPOT_FAKE_"


@attrs.frozen(kw_only=True)
class HubSpotConfig:
    """Every setting of the HubSpot fake; the static token has no default."""

    access_token: str = attrs.field(repr=False)  # the private/static app token accepted as Bearer
    client_id: str = "crmsync-hubspot"
    client_secret: str = attrs.field(default="", repr=False)  # OAuth refresh grant off when empty
    refresh_token: str = attrs.field(default="", repr=False)
    app_secret: str = attrs.field(default="", repr=False)  # signs webhooks (X-HubSpot-Signature-v3)
    host: str = "127.0.0.1"
    port: int = 8081
    token_ttl: int = 1800
    portal_id: int = 62515
    app_id: int = 1160452
    webhook_url: str = ""  # several URLs separated by spaces get the batches in turn
    webhook_attempts: int = 5
    webhook_backoff: float = 0.5
    webhook_timeout: float = 5.0
    webhook_batch: int = 100
    rate_max: int = 190  # requests per interval per token (TEN_SECONDLY_ROLLING)
    rate_interval_ms: int = 10_000
    daily_max: int = 1_000_000
    search_rate: int = 5  # search requests per second per token
    failure_rate: float = 0.0
    failure_status: int = 502
    lost_reply_rate: float = 0.0
    latency_ms: float = 0.0
    log_file: str | None = None
    log_level: str = "INFO"
    seed: int | None = None

    def __attrs_post_init__(self) -> None:
        """Reject impossible combinations with one clear sentence."""
        _check(bool(self.access_token), "access_token (HUBSPOT_FAKE_ACCESS_TOKEN) is required.")
        _check(0 <= self.port <= 65535, "port must be between 0 and 65535.")
        _check(self.token_ttl > 0, "token_ttl must be a whole number of seconds above 0.")
        _check(self.rate_max >= 1 and self.rate_interval_ms >= 1, "rate_max and rate_interval_ms must be >= 1.")
        _check(self.daily_max >= 1 and self.search_rate >= 1, "daily_max and search_rate must be >= 1.")
        _check(0 <= self.failure_rate <= 1, "failure_rate must be between 0 and 1.")
        _check(400 <= self.failure_status <= 599, "failure_status must be between 400 and 599.")
        _check(0 <= self.lost_reply_rate <= 1, "lost_reply_rate must be between 0 and 1.")
        _check(math.isfinite(self.latency_ms) and self.latency_ms >= 0, "latency_ms must be >= 0.")
        _check(self.log_level in LOG_LEVELS, f"log_level must be one of {', '.join(LOG_LEVELS)}.")
        _check(self.webhook_attempts >= 1, "webhook_attempts must be at least 1.")
        _check(self.webhook_backoff >= 0 and self.webhook_timeout > 0, "webhook_backoff/timeout must be >= 0/> 0.")
        _check(1 <= self.webhook_batch <= 100, "webhook_batch must be between 1 and 100.")
        if self.webhook_urls:
            _check(all(map(_is_http_url, self.webhook_urls)), "webhook_url must hold http(s) URLs separated by spaces.")
            _check(bool(self.app_secret), "app_secret (HUBSPOT_FAKE_APP_SECRET) is required for webhooks.")

    @property
    def webhook_urls(self) -> tuple[str, ...]:
        """Where webhook batches go, in turn; empty when they are off."""
        return tuple(self.webhook_url.split())

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HubSpotConfig:
        """Build a config from HUBSPOT_FAKE_* variables (a field's name in capitals), raising ConfigError."""
        kwargs: dict[str, Any] = {}
        for field in attrs.fields(cls):
            raw = env.get(PREFIX + field.name.upper())
            if raw is None:
                continue
            kwargs[field.name] = _convert(field.name, raw, field.default)
        if "webhook_url" not in kwargs:
            kwargs["webhook_url"] = "http://127.0.0.1:8080/webhook/hubspot"
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(f"{PREFIX}{str(exc).split(' ', 1)[0].upper()}: {exc}") from None
        except TypeError:
            raise ConfigError(f"{PREFIX}ACCESS_TOKEN is required.") from None


def _convert(name: str, raw: str, default: Any) -> Any:
    """Turn one variable into the field's type (by its default), naming the variable on error."""
    text = raw.strip()
    if name == "log_level":
        return text.upper()
    if name == "log_file":
        return text or None
    kind = int if name == "seed" or isinstance(default, int) else float if isinstance(default, float) else str
    try:
        value = kind(text) if kind is not str else raw
    except ValueError:
        noun = {int: "a whole number", float: "a number"}[kind]
        raise ConfigError(f"{PREFIX}{name.upper()} must be {noun}, got {raw!r}.") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{PREFIX}{name.upper()} must be a finite number, got {raw!r}.")
    return value
