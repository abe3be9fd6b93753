"""Settings read from the environment, validated once at start-up."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from .signatures import decode_secret
from .store.engines import SQLITE_PREFIX, parse_database_url


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one sentence for a person."""


@attrs.frozen
class SmtpConfig:
    """Where failure alerts are mailed."""

    host: str
    port: int = 25
    sender: str = "crmsync@localhost"
    recipients: tuple[str, ...] = ()
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class HubSpotSettings:
    """How to reach a HubSpot account (CRMSYNC_CRM=hubspot): a static token, or OAuth with a refresh token."""

    url: str = "https://api.hubapi.com"
    token: str = attrs.field(default="", repr=False)  # a private (or static) app token, sent as Bearer
    client_id: str = ""
    client_secret: str = attrs.field(default="", repr=False)
    refresh_token: str = attrs.field(default="", repr=False)
    app_secrets: tuple[str, ...] = attrs.field(default=(), repr=False)  # sign webhooks (v3); several in a rotation
    app_id: int | None = None  # our app's id: its own API changes are told apart from other integrations'
    webhook_url: str = ""  # the public URL HubSpot posts to (signed over it); the request's own URL when empty
    timezone: str = "UTC"  # the account's time zone: HubSpot resets daily limits at its midnight


@attrs.frozen
class Config:
    """Everything the backend needs to run; secrets are kept out of repr()."""

    crm_client_secret: str = attrs.field(repr=False)
    jwt_secret: str = attrs.field(repr=False)
    webhook_secrets: tuple[str, ...] = attrs.field(repr=False)
    host: str = "127.0.0.1"
    port: int = 8080
    # sqlite:///relative/path, sqlite:////absolute/path, or postgresql://user:password@host:port/dbname
    database_url: str = attrs.field(default="sqlite:///data/crmsync.db", repr=False)
    db_pool: int = 10
    # Which CRM the adapter speaks to: "mock" (mock_crm/) or "hubspot" (then hubspot holds its settings).
    crm: str = "mock"
    hubspot: HubSpotSettings | None = None
    crm_url: str = "http://127.0.0.1:8081"
    crm_client_id: str = "crmsync"
    workers: int = 8
    batch_size: int = 100
    log_file: Path | None = None
    log_level: str = "INFO"
    reconcile_interval: float = 300.0
    job_retries: int = 5
    signin_max_failures: int = 10
    signin_window: float = 900.0
    body_timeout: float = 30.0
    # Seconds a stored webhook event (payload included) is kept; 0 keeps them forever.
    webhook_retention: float = 30 * 86400.0
    # Bound on one CRM token fetch, its retries included; every waiting push fails over after it.
    crm_token_timeout: float = 5.0
    smtp: SmtpConfig | None = None
    # Seconds before a job's 1st, 2nd, ... retry (the last repeats), each ±20 %; CRMSYNC_JOB_BACKOFF.
    job_backoff: tuple[float, ...] = (30.0, 120.0, 600.0, 1800.0, 7200.0)
    # Tuning knobs that tests shorten; not read from the environment.
    crm_attempts: int = 3
    crm_backoff: float = 0.5
    crm_timeout: float = 10.0
    crm_max_rate_wait: float = 60.0
    token_ttl: float = 24 * 3600.0
    shutdown_timeout: float = 10.0
    # A claimed job's lease: extended while it runs; another replica takes it once it runs out.
    job_lease: float = 30.0
    # What a contact deleted in the CRM becomes here: "unlink" (failed until a person chooses) or "delete".
    on_crm_delete: str = "unlink"
    # Contacts created in the CRM (webhook contact.created, or seen by a sweep) appear here.
    import_crm_creates: bool = True
    # Seconds between full reconciles (every linked user checked against the CRM); 0 = never.
    full_reconcile_interval: float = 86400.0
    # Seconds between looks at that timer, at most (how late a turn, or the resume of a stopped one, starts).
    full_reconcile_tick: float = 30.0
    # Replicas heartbeat this often; one silent for replica_dead_after is taken for dead, its jobs freed.
    replica_heartbeat: float = 2.0
    replica_dead_after: float = 10.0
    meeting_cache_size: int = 10_000
    # How long an account seen to exist is believed without asking the database again.
    account_cache_ttl: float = 30.0
    webhook_prune_interval: float = 3600.0

    @property
    def webhook_keys(self) -> list[bytes]:
        """The HMAC keys inside the webhook secrets (validated at start-up, so this cannot fail)."""
        return _webhook_keys(self.webhook_secrets)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Build a Config from CRMSYNC_* variables; raise ConfigError naming the bad one."""
        env = os.environ if env is None else env
        reader = _Reader(env)
        smtp_host = reader.text("CRMSYNC_SMTP_HOST", "")
        smtp = None
        if smtp_host:
            smtp = SmtpConfig(
                host=smtp_host,
                port=reader.integer("CRMSYNC_SMTP_PORT", 25, low=1, high=65535),
                sender=reader.text("CRMSYNC_SMTP_FROM", "crmsync@localhost"),
                recipients=tuple(reader.text("CRMSYNC_SMTP_TO", "").replace(",", " ").split()),
                user=reader.text("CRMSYNC_SMTP_USER", "") or None,
                password=reader.text("CRMSYNC_SMTP_PASSWORD", "") or None,
            )
            if not smtp.recipients:
                raise ConfigError("CRMSYNC_SMTP_TO must name at least one recipient when CRMSYNC_SMTP_HOST is set")
        log_file = reader.text("CRMSYNC_LOG_FILE", "")
        crm = reader.choice("CRMSYNC_CRM", "mock", ("MOCK", "HUBSPOT")).lower()
        mock = crm == "mock"  # the mock CRM's client secret and webhook secrets are needed only to talk to it
        return cls(
            host=reader.text("CRMSYNC_HOST", "127.0.0.1"),
            port=reader.integer("CRMSYNC_PORT", 8080, low=0, high=65535),
            database_url=reader.database_url(),
            db_pool=reader.integer("CRMSYNC_DB_POOL", 10, low=1, high=1000),
            crm=crm,
            hubspot=None if mock else reader.hubspot(),
            crm_url=reader.url("CRMSYNC_CRM_URL", "http://127.0.0.1:8081"),
            crm_client_id=reader.text("CRMSYNC_CRM_CLIENT_ID", "crmsync"),
            crm_client_secret=reader.secret("CRMSYNC_CRM_CLIENT_SECRET") if mock else "",
            jwt_secret=reader.secret("CRMSYNC_JWT_SECRET", min_length=32),
            webhook_secrets=reader.webhook_secrets("CRMSYNC_WEBHOOK_SECRET") if mock else (),
            workers=reader.integer("CRMSYNC_WORKERS", 8, low=1, high=256),
            batch_size=reader.integer("CRMSYNC_BATCH_SIZE", 100, low=1, high=100),
            meeting_cache_size=reader.integer("CRMSYNC_MEETING_CACHE", 10_000, low=0, high=10_000_000),
            log_file=Path(log_file) if log_file else None,
            log_level=reader.choice("CRMSYNC_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            reconcile_interval=reader.number("CRMSYNC_RECONCILE_INTERVAL", 300.0, low=0),
            job_retries=reader.integer("CRMSYNC_JOB_RETRIES", 5, low=0, high=100),
            job_backoff=reader.seconds_list("CRMSYNC_JOB_BACKOFF", (30.0, 120.0, 600.0, 1800.0, 7200.0)),
            job_lease=reader.number("CRMSYNC_JOB_LEASE", 30.0, low=1, high=3600),
            replica_heartbeat=(heartbeat := reader.number("CRMSYNC_REPLICA_HEARTBEAT", 2.0, low=0.1, high=300)),
            replica_dead_after=reader.number("CRMSYNC_REPLICA_DEAD_AFTER", 10.0, low=2 * heartbeat, high=3600),
            on_crm_delete=reader.choice("CRMSYNC_ON_CRM_DELETE", "unlink", ("UNLINK", "DELETE")).lower(),
            import_crm_creates=reader.boolean("CRMSYNC_IMPORT_CRM_CREATES", True),
            full_reconcile_interval=reader.number("CRMSYNC_FULL_RECONCILE_INTERVAL", 86400.0, low=0),
            signin_max_failures=reader.integer("CRMSYNC_SIGNIN_MAX_FAILURES", 10, low=0, high=1_000_000),
            signin_window=reader.number("CRMSYNC_SIGNIN_WINDOW", 900.0, low=1),
            body_timeout=reader.number("CRMSYNC_BODY_TIMEOUT", 30.0, low=0),
            webhook_retention=reader.number("CRMSYNC_WEBHOOK_RETENTION_DAYS", 30.0, low=0, high=36500) * 86400,
            crm_token_timeout=reader.number("CRMSYNC_CRM_TOKEN_TIMEOUT", 5.0, low=0.1),
            smtp=smtp,
        )


@functools.cache
def _webhook_keys(secrets: tuple[str, ...]) -> list[bytes]:
    return [decode_secret(secret) for secret in secrets]


@attrs.frozen
class _Reader:
    """Typed access to environment variables with one clear error per bad value."""

    env: Mapping[str, str]

    def text(self, name: str, default: str) -> str:
        return self.env.get(name, default).strip()

    def secret(self, name: str, min_length: int = 8) -> str:
        value = self.env.get(name, "").strip()
        if not value:
            raise ConfigError(f"{name} is not set; run ./run.sh once to generate data/dev.env, or export it")
        if len(value) < min_length:
            raise ConfigError(f"{name} is too short: use at least {min_length} characters")
        return value

    def webhook_secrets(self, name: str) -> tuple[str, ...]:
        secrets = tuple(self.secret(name).split())
        for secret in secrets:
            try:
                decode_secret(secret)
            except ValueError:
                raise ConfigError(f"{name} must hold whsec_<base64> secrets separated by spaces") from None
        return secrets

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float, low: float, high: float = float("inf")) -> float:
        raw = self.text(name, str(default))
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not value >= low:
            raise ConfigError(f"{name} must be at least {low}, got {raw}")
        if value > high:
            raise ConfigError(f"{name} must be at most {high}, got {raw}")
        return value

    def seconds_list(self, name: str, default: tuple[float, ...]) -> tuple[float, ...]:
        """Seconds separated by commas or spaces (each above 0), e.g. a schedule of retries."""
        raw = self.text(name, "")
        if not raw:
            return default
        try:
            values = tuple(float(part) for part in raw.replace(",", " ").split())
        except ValueError:
            raise ConfigError(f"{name} must be numbers of seconds separated by commas, got {raw!r}") from None
        if not all(0 < value <= 86400 for value in values):
            raise ConfigError(f"{name} must hold seconds between 0 and 86400 (0 excluded), got {raw!r}")
        return values

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name, "true" if default else "false").lower()
        if raw not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"{name} must be true or false, got {raw!r}")
        return raw in ("true", "1", "yes")

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        value = self.text(name, default).upper()
        if value not in options:
            raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}")
        return value

    def database_url(self) -> str:
        """CRMSYNC_DATABASE_URL, else CRMSYNC_DB as a SQLite path; checked, never echoed (it may hold a password)."""
        url = self.text("CRMSYNC_DATABASE_URL", "")
        name = "CRMSYNC_DATABASE_URL"
        if not url:
            name, url = "CRMSYNC_DB", SQLITE_PREFIX + self.text("CRMSYNC_DB", "data/crmsync.db")
        try:
            parse_database_url(url)
        except ValueError as exc:
            raise ConfigError(f"{name} is not usable: {exc}") from None
        return url

    def hubspot(self) -> HubSpotSettings:
        """CRMSYNC_HUBSPOT_*: a token, or the three OAuth settings; the app secret(s) for webhooks."""
        token = self.text("CRMSYNC_HUBSPOT_TOKEN", "")
        oauth = {name: self.text(f"CRMSYNC_HUBSPOT_{name.upper()}", "")
                 for name in ("client_id", "client_secret", "refresh_token")}  # fmt: skip
        if not token and not all(oauth.values()):
            raise ConfigError(
                "CRMSYNC_CRM=hubspot needs CRMSYNC_HUBSPOT_TOKEN (a private app token) or all of "
                "CRMSYNC_HUBSPOT_CLIENT_ID, CRMSYNC_HUBSPOT_CLIENT_SECRET and CRMSYNC_HUBSPOT_REFRESH_TOKEN"
            )
        secrets = tuple(self.text("CRMSYNC_HUBSPOT_APP_SECRET", "").split())
        if not secrets and oauth["client_secret"]:
            secrets = (oauth["client_secret"],)  # HubSpot signs a public app's webhooks with its client secret
        app_id = self.text("CRMSYNC_HUBSPOT_APP_ID", "")
        if app_id and not app_id.isdigit():
            raise ConfigError(f"CRMSYNC_HUBSPOT_APP_ID must be a whole number, got {app_id!r}")
        zone = self.text("CRMSYNC_HUBSPOT_TIMEZONE", "UTC")
        try:
            ZoneInfo(zone)
        except (ValueError, ZoneInfoNotFoundError):
            raise ConfigError(
                f"CRMSYNC_HUBSPOT_TIMEZONE must be a time zone name such as Europe/Berlin, got {zone!r}"
            ) from None
        webhook_url = self.text("CRMSYNC_HUBSPOT_WEBHOOK_URL", "")  # kept exactly: the signature covers it
        if webhook_url and not webhook_url.startswith(("http://", "https://")):
            raise ConfigError(f"CRMSYNC_HUBSPOT_WEBHOOK_URL must be an http:// or https:// URL, got {webhook_url!r}")
        return HubSpotSettings(
            url=self.url("CRMSYNC_HUBSPOT_URL", "https://api.hubapi.com"),
            token=token,
            **oauth,
            app_secrets=secrets,
            app_id=int(app_id) if app_id else None,
            webhook_url=webhook_url,
            timezone=zone,
        )

    def url(self, name: str, default: str) -> str:
        value = self.text(name, default).rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ConfigError(f"{name} must be an http:// or https:// URL, got {value!r}")
        return value
