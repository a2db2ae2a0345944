"""Settings, read from the environment once and passed around explicitly."""

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class Config:
    database_url: str
    pool_min_size: int = 4
    pool_max_size: int = 4
    pool_timeout: float = 5.0
    statement_timeout_ms: int = 5000
    retention_interval_seconds: float = 600.0
    event_retention_days: int = 30

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
            event_retention_days=_positive_int(env, "EVENT_RETENTION_DAYS", cls.event_retention_days),
        )


class ConfigError(ValueError):
    pass


def _int(env, name, default):
    return int(env.get(name, default))


def _positive_int(env, name, default):
    value = _int(env, name, default)
    if value < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, not {value}")
    return value
