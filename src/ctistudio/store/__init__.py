"""The store: SQLAlchemy models, migrations and repository functions (SQLite by default, PostgreSQL for teams).

Use one :class:`Store` per process and call repository functions with a session::

    store = Store(settings)                      # opens + migrates CTISTUDIO_DATABASE_URL
    with store.session() as session:
        article = get_article(session, 42)

No SQL outside this package: web routes and CLI commands call the functions named for what they do.
"""

from ctistudio.store.database import Store, StoreError, create_store_engine, normalise_database_url

__all__ = ["Store", "StoreError", "create_store_engine", "normalise_database_url"]
