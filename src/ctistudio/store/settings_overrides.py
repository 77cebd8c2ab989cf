"""Values saved in the Settings UI, overriding env/.env in every process (see ``config.SettingsSource``).

A single-row version counter goes up on every save, so a process polls one tiny row and rereads the
values only when the counter moved. Keys are settings field names or their env names (``LMSTUDIO_API_URL``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ctistudio.store.models import SettingOverride, SettingsVersion
from ctistudio.store.types import utcnow

_VERSION_ROW = 1


def read_settings_version(session: Session) -> int:
    """The save counter (0 before anything was ever saved)."""
    version = session.scalar(select(SettingsVersion.version).where(SettingsVersion.id == _VERSION_ROW))
    return int(version or 0)


def read_settings_overrides(session: Session) -> dict[str, Any]:
    """Every saved override as ``{key: value}``."""
    return {row.key: row.value for row in session.scalars(select(SettingOverride).order_by(SettingOverride.key))}


def write_settings_overrides(session: Session, values: dict[str, Any]) -> int:
    """Merge ``values`` into the saved overrides; a ``None`` value removes that key. Returns the new version."""
    for key, value in values.items():
        if value is None:
            session.execute(delete(SettingOverride).where(SettingOverride.key == key))
            continue
        row = session.get(SettingOverride, key)
        if row is None:
            session.add(SettingOverride(key=key, value=value))
        else:
            row.value = value
            row.updated_at = utcnow()
    return _bump_version(session)


def clear_settings_overrides(session: Session) -> int:
    """Remove every saved override (back to env/.env); returns the new version."""
    session.execute(delete(SettingOverride))
    return _bump_version(session)


def _bump_version(session: Session) -> int:
    session.flush()
    bumped = session.execute(
        update(SettingsVersion)
        .where(SettingsVersion.id == _VERSION_ROW)
        .values(version=SettingsVersion.version + 1, updated_at=utcnow())
    )
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        session.add(SettingsVersion(id=_VERSION_ROW, version=1))
        session.flush()
    return read_settings_version(session)
