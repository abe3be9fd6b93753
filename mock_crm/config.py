"""Mock CRM settings: an attrs value built from keywords (tests) or from MOCK_CRM_* variables."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from yarl import URL

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A missing or invalid setting, described in one sentence."""


def webhook_key(secret: str) -> bytes:
    """Return the HMAC key inside a `whsec_<base64>` secret, or raise ConfigError."""
    prefix, sep, encoded = secret.partition("_")
    if prefix != "whsec" or not sep or not encoded:
        raise ConfigError("webhook_secret must look like whsec_<base64>.")
    try:
        # Accept unpadded base64 too, as the Standard Webhooks libraries do.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("webhook_secret is not valid base64 after 'whsec_'.") from None
    if not key:
        raise ConfigError("webhook_secret must not be empty after 'whsec_'.")
    return key


def _check(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless condition holds."""
    if not condition:
        raise ConfigError(message)


def _is_http_url(text: str) -> bool:
    """Return True for an absolute http(s) URL with a host."""
    try:
        url = URL(text)
    except (ValueError, TypeError):
        return False
    return url.scheme in ("http", "https") and bool(url.host)


def _default_burst(config: MockConfig) -> int:
    """Return the bucket capacity implied by the rate: max(1, ceil(rate))."""
    return max(1, math.ceil(config.rate_limit))


@attrs.frozen(kw_only=True)
class MockConfig:
    """Every setting of the mock CRM; only client_secret has no default."""

    client_secret: str = attrs.field(repr=False)
    client_id: str = "crmsync"
    host: str = "127.0.0.1"
    port: int = 8081
    token_ttl: int = 3600
    # Webhooks are off unless a URL is given (from_env defaults to http://127.0.0.1:8080/webhook); several
    # URLs separated by spaces (replicas) get the deliveries in turn, as a load balancer would spread them.
    webhook_url: str = ""
    webhook_secret: str = attrs.field(default="", repr=False)
    rate_limit: float = 0.0
    rate_burst: int = attrs.field(default=attrs.Factory(_default_burst, takes_self=True))
    failure_rate: float = 0.0
    lost_reply_rate: float = 0.0
    latency_ms: float = 0.0
    log_file: str | None = None
    log_level: str = "INFO"
    webhook_attempts: int = 5
    webhook_backoff: float = 0.5
    webhook_timeout: float = 5.0
    seed: int | None = None

    def __attrs_post_init__(self) -> None:
        """Reject impossible combinations with one clear sentence."""
        _check(bool(self.client_secret), "client_secret (MOCK_CRM_CLIENT_SECRET) is required.")
        _check(bool(self.client_id), "client_id (MOCK_CRM_CLIENT_ID) must not be empty.")
        _check(0 <= self.port <= 65535, "port must be between 0 and 65535.")
        _check(self.token_ttl > 0, "token_ttl must be a whole number of seconds above 0.")
        _check(math.isfinite(self.rate_limit) and self.rate_limit >= 0, "rate_limit must be >= 0.")
        _check(self.rate_burst >= 1, "rate_burst must be at least 1.")
        _check(0 <= self.failure_rate <= 1, "failure_rate must be between 0 and 1.")
        _check(0 <= self.lost_reply_rate <= 1, "lost_reply_rate must be between 0 and 1.")
        _check(math.isfinite(self.latency_ms) and self.latency_ms >= 0, "latency_ms must be >= 0.")
        _check(self.log_level in LOG_LEVELS, f"log_level must be one of {', '.join(LOG_LEVELS)}.")
        _check(self.webhook_attempts >= 1, "webhook_attempts must be at least 1.")
        _check(self.webhook_backoff >= 0, "webhook_backoff must be >= 0.")
        _check(self.webhook_timeout > 0, "webhook_timeout must be above 0.")
        if self.webhook_urls:
            _check(all(map(_is_http_url, self.webhook_urls)), "webhook_url must hold http(s) URLs separated by spaces.")
            _check(bool(self.webhook_secret), "webhook_secret (MOCK_CRM_WEBHOOK_SECRET) is required.")
            webhook_key(self.webhook_secret)

    @property
    def webhook_urls(self) -> tuple[str, ...]:
        """Where webhooks go, in turn; empty when they are off."""
        return tuple(self.webhook_url.split())

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MockConfig:
        """Build a config from MOCK_CRM_* variables, raising ConfigError on bad values."""
        get = _env_reader(env)
        kwargs: dict[str, Any] = {
            "client_secret": get("CLIENT_SECRET", str, ""),
            "client_id": get("CLIENT_ID", str, "crmsync"),
            "host": get("HOST", str, "127.0.0.1"),
            "port": get("PORT", int, 8081),
            "token_ttl": get("TOKEN_TTL", int, 3600),
            "webhook_url": get("WEBHOOK_URL", str, "http://127.0.0.1:8080/webhook"),
            "webhook_secret": get("WEBHOOK_SECRET", str, ""),
            "rate_limit": get("RATE_LIMIT", float, 0.0),
            "failure_rate": get("FAILURE_RATE", float, 0.0),
            "lost_reply_rate": get("LOST_REPLY_RATE", float, 0.0),
            "latency_ms": get("LATENCY_MS", float, 0.0),
            "log_file": get("LOG_FILE", str, "") or None,
            "log_level": get("LOG_LEVEL", str, "INFO").upper(),
        }
        if "MOCK_CRM_RATE_BURST" in env:
            kwargs["rate_burst"] = get("RATE_BURST", int, 1)
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(_env_names(str(exc))) from None


def _env_reader(env: Mapping[str, str]) -> Callable[[str, Callable[[str], Any], Any], Any]:
    """Return get(name, kind, default): MOCK_CRM_<name> converted by kind, naming the variable on error."""

    def get(name: str, kind: Callable[[str], Any], default: Any) -> Any:
        raw = env.get(f"MOCK_CRM_{name}")
        if raw is None:
            return default
        try:
            value = kind(raw.strip())
        except ValueError:
            noun = {int: "a whole number", float: "a number"}.get(kind, "text")
            raise ConfigError(f"MOCK_CRM_{name} must be {noun}, got {raw!r}.") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"MOCK_CRM_{name} must be a finite number, got {raw!r}.")
        return value

    return get


def _env_names(message: str) -> str:
    """Point a field-level message at the environment variable that sets it."""
    field = message.split(" ", 1)[0]
    if field.islower() and "MOCK_CRM_" not in message:
        return f"MOCK_CRM_{field.upper()}: {message}"
    return message
