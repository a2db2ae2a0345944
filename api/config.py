"""Settings, read from the environment once and passed around explicitly."""

import dataclasses
import ipaddress
import os
import re


@dataclasses.dataclass(frozen=True)
class Config:
    database_url: str
    pool_min_size: int = 4
    pool_max_size: int = 8  # PERF: see docs/operations.md, Connections
    pool_timeout: float = 5.0
    statement_timeout_ms: int = 5000
    retention_interval_seconds: float = 600.0
    token_ttl_days: int = 30
    forwarded_allow_ips: tuple = ()  # ipaddress networks of the proxies whose X-Forwarded-For counts
    event_retention_days: int = 30
    webhook_allowed_networks: tuple = ()  # ipaddress networks webhooks may reach besides global ones
    webhook_retry_schedule: tuple = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)  # seconds
    database_pooler: str = ""  # "transaction": DATABASE_URL is a pooler in transaction mode
    delivery_database_url: str = ""  # the delivery worker's, when not DATABASE_URL (see api/delivery.py)
    metrics_token: str | None = None  # GET /metrics answers 404 while unset
    database_replica_url: str = ""  # a streaming replica that lists, search, stats... may read from
    replica_max_lag: float = 5.0  # seconds; a replica further behind is skipped
    drain_seconds: float = 0.0  # after SIGTERM: GET /ready answers 503 while the worker still serves

    @classmethod
    def from_env(cls, env=os.environ):
        if not env.get("DATABASE_URL"):
            raise ConfigError(
                "DATABASE_URL is not set: give the server the postgresql:// URL of its database "
                "(make run sets it to the private cluster's)"
            )
        return cls(
            database_url=env["DATABASE_URL"],
            pool_min_size=_int(env, "POOL_MIN_SIZE", cls.pool_min_size),
            pool_max_size=_int(env, "POOL_MAX_SIZE", cls.pool_max_size),
            pool_timeout=float(env.get("POOL_TIMEOUT", cls.pool_timeout)),
            statement_timeout_ms=_int(env, "STATEMENT_TIMEOUT_MS", cls.statement_timeout_ms),
            retention_interval_seconds=float(
                env.get("RETENTION_INTERVAL_SECONDS", cls.retention_interval_seconds)
            ),
            token_ttl_days=_token_ttl_days(env),
            forwarded_allow_ips=networks(env.get("FORWARDED_ALLOW_IPS", ""), "FORWARDED_ALLOW_IPS"),
            event_retention_days=_positive_int(env, "EVENT_RETENTION_DAYS", cls.event_retention_days),
            webhook_allowed_networks=networks(
                env.get("WEBHOOK_ALLOWED_NETWORKS", ""), "WEBHOOK_ALLOWED_NETWORKS"
            ),
            webhook_retry_schedule=durations(env.get("WEBHOOK_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,10h")),
            database_pooler=_pooler(env),
            delivery_database_url=env.get("DELIVERY_DATABASE_URL", ""),
            metrics_token=_metrics_token(env),
            database_replica_url=env.get("DATABASE_REPLICA_URL", ""),
            # NOTE: the lag is measured every 0.25 s (api/replica.py)
            replica_max_lag=_seconds(env, "REPLICA_MAX_LAG", cls.replica_max_lag, 0.5, 86400),
            drain_seconds=_seconds(env, "DRAIN_SECONDS", cls.drain_seconds, 0, 600),
        )


class ConfigError(ValueError):
    pass


def _int(env, name, default):
    return int(env.get(name, default))


def _token_ttl_days(env):
    days = _int(env, "TOKEN_TTL_DAYS", Config.token_ttl_days)
    if not 1 <= days <= 3650:
        raise ConfigError(f"TOKEN_TTL_DAYS must be 1 to 3650 days, not {days}")
    return days


def networks(text, name):
    """Comma-separated addresses or networks (`10.0.0.1, 192.168.0.0/16`)."""
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
        )
    except ValueError as ex:
        raise ConfigError(f"{name} must list IP addresses or networks: {ex}") from None


UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def durations(text):
    """`WEBHOOK_RETRY_SCHEDULE`: comma-separated durations (`5s,5m,2h`; `0.5s` too), in seconds."""
    try:
        seconds = tuple(float(part.strip()[:-1]) * UNIT_SECONDS[part.strip()[-1]] for part in text.split(","))
    except (ValueError, KeyError, IndexError):
        seconds = ()
    if not seconds or any(not 0 < s < 10**7 for s in seconds):
        raise ConfigError(f"WEBHOOK_RETRY_SCHEDULE must list durations such as 5s,5m,2h, not {text!r}")
    return seconds


def _positive_int(env, name, default):
    value = _int(env, name, default)
    if value < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, not {value}")
    return value


def _pooler(env):
    value = env.get("DATABASE_POOLER", "")
    if value not in ("", "transaction"):
        raise ConfigError(f"DATABASE_POOLER must be unset or 'transaction', not {value!r}")
    return value


def _seconds(env, name, default, low, high):
    text = env.get(name, str(default))
    try:
        seconds = float(text)
    except ValueError:
        seconds = low - 1
    if not low <= seconds <= high:
        raise ConfigError(f"{name} must be {low:g} to {high:g} seconds, not {text!r}")
    return seconds


MIN_METRICS_TOKEN_LENGTH = 16
VISIBLE_ASCII = re.compile(rf"[\x21-\x7e]{{{MIN_METRICS_TOKEN_LENGTH},}}")


def _metrics_token(env):
    token = env.get("METRICS_TOKEN", "")
    if token and not VISIBLE_ASCII.fullmatch(token):
        raise ConfigError(
            f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} visible ASCII characters, no spaces "
            "(e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return token or None
