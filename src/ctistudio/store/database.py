"""The engine, sessions and migrations behind :class:`Store`.

``Store(settings)`` opens ``settings.resolved_database_url()`` (a SQLite file under ``CTISTUDIO_DATA_DIR`` by
default, or ``CTISTUDIO_DATABASE_URL``) and brings the schema to the newest migration before first use, so
``ctistudio`` creates and upgrades its database by itself. Repository functions in the ``store`` package
take a :class:`~sqlalchemy.orm.Session`; get one with ``with store.session() as session: ...`` (committed
on success, rolled back on error).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ctistudio.config import Settings
from ctistudio.errors import ConfigurationError, CtiStudioError
from ctistudio.store import migrate
from ctistudio.store.secret_box import SecretBox, key_file_for

log = logging.getLogger(__name__)


class StoreError(CtiStudioError):
    """The database could not be opened, migrated or written."""


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` / ``postgres://`` URLs (SQLAlchemy's default is psycopg2)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_store_engine(url: str) -> Engine:
    """An engine for ``url`` (SQLite: file created with its folder, foreign keys on, WAL journal)."""
    url = normalise_database_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"CTISTUDIO_DATABASE_URL is not a database URL: {url!r}",
            fix="Use sqlite:///path/to/ctistudio.db or postgresql://user:password@host:5432/dbname.",
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise ConfigurationError(
        f"unsupported database {backend!r} in CTISTUDIO_DATABASE_URL",
        fix="ctistudio supports SQLite (default) and PostgreSQL: use sqlite:///… or postgresql://….",
    )


class Store:
    """The database of one ctistudio installation: engine, sessions and the settings-overrides cache.

    Thread-safe; create one per process and share it. ``migrate=False`` skips the automatic upgrade (for
    tools that inspect an old database).
    """

    def __init__(self, settings: Settings | None = None, *, url: str | None = None, migrate: bool = True) -> None:
        if url is None:
            if settings is None:
                raise ValueError("Store needs settings or a url")
            url = settings.resolved_database_url()
        self.url = normalise_database_url(url)
        self.engine = create_store_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._overrides_lock = threading.Lock()
        self._overrides_cache: tuple[int, dict[str, Any]] | None = None
        # secrets in the overrides are stored encrypted (a store opened by URL alone has no key file)
        self._secrets = SecretBox(key_file_for(settings)) if settings is not None else None
        if migrate:
            self.upgrade()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def upgrade(self) -> None:
        """Apply every migration not yet applied (a no-op when the schema is current)."""
        try:
            migrate.upgrade_to_head(self.engine)
        except OperationalError as exc:
            raise StoreError(
                f"cannot open the database at {self.safe_url()}: {exc.orig}",
                fix="Check CTISTUDIO_DATABASE_URL (server running, user and password right, database created) "
                "or unset it to use the SQLite file under CTISTUDIO_DATA_DIR.",
            ) from exc

    def schema_revision(self) -> str | None:
        return migrate.current_revision(self.engine)

    def table_names(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    def safe_url(self) -> str:
        """The database URL with any password hidden (for messages and logs)."""
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed when the block ends without error, rolled back otherwise."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise StoreError(
                f"database error: {exc.__class__.__name__}: {getattr(exc, 'orig', exc)}",
                fix=f"Check that the database at {self.safe_url()} is reachable and writable.",
            ) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    # -- settings overrides (the hook of config.SettingsSource) --------------------------------------
    def load_settings_overrides(self) -> tuple[int, dict[str, Any]]:
        """``(version, {key: value})`` of the values saved in the UI; cheap when nothing changed."""
        from ctistudio.store.settings_overrides import read_settings_overrides, read_settings_version

        with self.session() as session:
            version = read_settings_version(session)
            with self._overrides_lock:
                if self._overrides_cache is not None and self._overrides_cache[0] == version:
                    return version, dict(self._overrides_cache[1])
            values = read_settings_overrides(session)
        if self._secrets is not None:
            values = self._secrets.open(values)
        with self._overrides_lock:
            self._overrides_cache = (version, values)
        return version, dict(values)

    def save_settings_overrides(self, values: dict[str, Any]) -> int:
        """Merge ``values`` into the saved overrides (``None`` removes a key); returns the new version."""
        from ctistudio.store.settings_overrides import write_settings_overrides

        if self._secrets is not None:
            values = self._secrets.seal(values)
        with self.session() as session:
            return write_settings_overrides(session, values)

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()
