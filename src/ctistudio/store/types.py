"""Column types that behave the same on SQLite and PostgreSQL.

- :data:`JsonType`: ``JSON`` on SQLite, ``JSONB`` on PostgreSQL; values are plain dicts/lists.
- :class:`UtcDateTime`: timezone-aware UTC datetimes in Python on both engines (SQLite keeps no zone,
  so values are stored as naive UTC and handed back with ``tzinfo=UTC``).
- :func:`utcnow`: the one clock the store uses for its timestamps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator

JsonType = JSON().with_variant(postgresql.JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A ``DateTime`` that always comes back timezone-aware (UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
