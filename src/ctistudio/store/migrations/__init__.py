"""Alembic migrations of the ctistudio schema (run by :mod:`ctistudio.store.migrate`)."""
