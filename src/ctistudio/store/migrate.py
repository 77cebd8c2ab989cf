"""Alembic, run from code: the migrations ship inside the package (``ctistudio/store/migrations``).

Nobody needs an ``alembic.ini``: :func:`upgrade_to_head` is what :class:`~ctistudio.store.Store` calls on
open. Schema changes are new, ordered, named revision files in ``migrations/versions`` (never edits of an
applied one); ``make_revision`` writes one with autogenerate for developers.
"""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

SCRIPT_LOCATION = "ctistudio.store:migrations"
_PG_LOCK_KEY = 0x0C715707  # advisory lock held while one process migrates a PostgreSQL database


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found in ctistudio/store/migrations/versions"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Bring the database to the newest revision; cheap (one query) when it already is there."""
    head = head_revision()
    if current_revision(engine) == head:
        return
    log.info("migrating database schema to %s", head)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            command.upgrade(alembic_config(connection), "head")
    except DBAPIError:
        # Another process may have migrated at the same moment (first start of web and CLI together).
        if current_revision(engine) != head:
            raise
        log.info("schema was migrated by another process")


def make_revision(engine: Engine, message: str) -> None:
    """Autogenerate a new revision file from the models (developers only; review it before committing)."""
    with engine.begin() as connection:
        command.revision(alembic_config(connection), message=message, autogenerate=True)
