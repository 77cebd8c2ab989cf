"""Alembic environment: runs on the connection that :mod:`ctistudio.store.migrate` hands over."""

from __future__ import annotations

from alembic import context

from ctistudio.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through ctistudio.store.migrate (it supplies the connection)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things in place
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
