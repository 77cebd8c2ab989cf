"""Vector search inside PostgreSQL with the pgvector extension, when the server has it.

The stored vectors stay where they are on every database: float32 BLOBs in ``chunks.embedding``. On a
PostgreSQL server that has pgvector, :func:`ensure_pgvector` enables the extension
(``CREATE EXTENSION IF NOT EXISTS vector``) and creates a derived table of the same vectors as pgvector
values — like the full-text GIN indexes of :mod:`ctistudio.store.text_search`, derived data created on
first use and not a migration, so the schema stays exactly what the models describe::

    chunk_vectors(chunk_id → chunks.id ON DELETE CASCADE, article_id, model_key, embedding vector)

Chunks deleted or replaced take their vectors with them (the cascade); new chunks are copied over by
:func:`sync_chunk_vectors` (binary ``COPY``, no text formatting of floats). :func:`pgvector_search` is an
exact inner-product scan (``ORDER BY embedding <#> query``) of one model's vectors, optionally restricted
to some articles — the same answer as the in-memory numpy index, computed by the database.
``DROP TABLE chunk_vectors`` is always safe: the table is rebuilt from the BLOBs on the next search.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

_DDL = (
    "CREATE TABLE IF NOT EXISTS chunk_vectors ("
    " chunk_id integer PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,"
    " article_id integer NOT NULL,"
    " model_key varchar(300) NOT NULL,"
    " embedding vector NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_chunk_vectors_model_chunk ON chunk_vectors (model_key, chunk_id)",
)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)


@dataclass(frozen=True)
class PgvectorStatus:
    available: bool
    detail: str  # the extension's version, or why it cannot be used


_status: dict[str, PgvectorStatus] = {}
_status_lock = threading.Lock()


def ensure_pgvector(engine: Engine) -> PgvectorStatus:
    """Enable pgvector and create ``chunk_vectors`` if the server allows it (once per process and database).

    Never raises for a missing extension or a missing privilege: the status says why, and the caller
    falls back to the in-memory index.
    """
    key = str(engine.url)
    with _status_lock:
        known = _status.get(key)
        if known is not None:
            return known
        if engine.dialect.name != "postgresql":
            status = PgvectorStatus(False, f"{engine.dialect.name} is not PostgreSQL")
        else:
            status = _enable(engine)
        _status[key] = status
        return status


def _enable(engine: Engine) -> PgvectorStatus:
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    except DBAPIError as exc:
        with engine.connect() as connection:  # another process may have created it meanwhile
            version = connection.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'"))
            if version.scalar() is None:
                return PgvectorStatus(False, f"CREATE EXTENSION vector failed: {_first_line(exc)}")
    try:
        with engine.begin() as connection:
            for statement in _DDL:
                connection.execute(text(statement))
            version = connection.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'"))
            return PgvectorStatus(True, f"pgvector {version.scalar()}")
    except DBAPIError as exc:
        return PgvectorStatus(False, f"pgvector is installed but chunk_vectors cannot be created: {_first_line(exc)}")


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig or exc).strip().splitlines()[0]


def forget_pgvector_status(engine: Engine) -> None:
    """Check the server again on the next :func:`ensure_pgvector` (after installing the extension)."""
    with _status_lock:
        _status.pop(str(engine.url), None)


def vector_counts(connection: Connection, model_key: str) -> tuple[int, int]:
    """``(count, newest chunk id)`` of ``model_key``'s vectors in ``chunk_vectors``."""
    row = connection.execute(
        text("SELECT count(*), max(chunk_id) FROM chunk_vectors WHERE model_key = :key"), {"key": model_key}
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


def sync_chunk_vectors(engine: Engine, model_key: str, *, after_id: int = 0, all_missing: bool = False) -> int:
    """Copy ``model_key``'s vectors from ``chunks`` into ``chunk_vectors``; returns how many were copied.

    Copies the chunks with id > ``after_id``; with ``all_missing``, every chunk whose vector is not there
    yet (written by another process below the newest id, say). Safe to run from two processes at once.
    """
    copied = 0
    with engine.begin() as connection:
        connection.execute(
            text("CREATE TEMP TABLE IF NOT EXISTS chunk_vectors_load (LIKE chunk_vectors) ON COMMIT DELETE ROWS")
        )
        for rows in _rows_to_copy(connection, model_key, after_id=after_id, all_missing=all_missing):
            _copy_rows(connection, model_key, rows)
            copied += len(rows)
        if copied:
            connection.execute(
                text(
                    "INSERT INTO chunk_vectors SELECT l.* FROM chunk_vectors_load AS l "
                    "JOIN chunks AS c ON c.id = l.chunk_id ON CONFLICT (chunk_id) DO NOTHING"
                )
            )
    return copied


def _rows_to_copy(
    connection: Connection, model_key: str, *, after_id: int, all_missing: bool, batch: int = 20000
) -> Iterator[list[tuple[int, int, bytes]]]:
    missing = "AND NOT EXISTS (SELECT 1 FROM chunk_vectors AS v WHERE v.chunk_id = c.id)" if all_missing else ""
    sql = text(
        "SELECT c.id, c.article_id, c.embedding FROM chunks AS c "
        f"WHERE c.embedding_model = :key AND c.embedding IS NOT NULL AND c.id > :last {missing} "
        "ORDER BY c.id LIMIT :batch"
    )
    last = after_id
    while True:
        params = {"key": model_key, "last": last, "batch": batch}
        rows = [(int(r[0]), int(r[1]), bytes(r[2])) for r in connection.execute(sql, params)]
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _copy_rows(connection: Connection, model_key: str, rows: list[tuple[int, int, bytes]]) -> None:
    """Binary ``COPY`` of ``(chunk id, article id, little-endian float32 BLOB)`` rows into the load table."""
    dims = len(rows[0][2]) // 4
    key = model_key.encode()
    layout = np.dtype(
        [
            ("fields", ">i2"),
            ("id_len", ">i4"),
            ("id", ">i4"),
            ("article_len", ">i4"),
            ("article", ">i4"),
            ("key_len", ">i4"),
            ("key", f"S{len(key)}"),
            ("vector_len", ">i4"),
            ("dims", ">i2"),
            ("unused", ">i2"),
            ("vector", ">f4", (dims,)),
        ]
    )
    blobs = b"".join(r[2] for r in rows)
    if len(blobs) != 4 * dims * len(rows):
        raise ValueError(f"vectors of {model_key} do not all have {dims} dimensions")
    tuples = np.zeros(len(rows), dtype=layout)
    tuples["fields"] = 4
    tuples["id_len"], tuples["article_len"], tuples["key_len"] = 4, 4, len(key)
    tuples["id"] = [r[0] for r in rows]
    tuples["article"] = [r[1] for r in rows]
    tuples["key"] = key
    tuples["vector_len"] = 4 + 4 * dims
    tuples["dims"] = dims
    tuples["vector"] = np.frombuffer(blobs, dtype="<f4").reshape(len(rows), dims)
    statement = "COPY chunk_vectors_load (chunk_id, article_id, model_key, embedding) FROM STDIN (FORMAT BINARY)"
    driver = connection.connection.driver_connection
    assert driver is not None  # a live psycopg 3 connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(_COPY_HEADER + tuples.tobytes() + _COPY_TRAILER)


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form of a float32 vector, exact (each float32 printed as the double it equals)."""
    return "[" + ",".join(map(repr, np.asarray(vector, dtype=np.float32).reshape(-1).tolist())) + "]"


def pgvector_search(
    connection: Connection,
    model_key: str,
    vector: np.ndarray,
    *,
    limit: int = 50,
    article_ids: list[int] | None = None,
) -> list[tuple[int, float]]:
    """``(chunk id, inner product)`` of ``model_key``'s nearest vectors, best first (exact scan).

    ``article_ids`` keeps only chunks of those articles (``[]`` matches nothing).
    """
    if article_ids == []:
        return []
    params: dict[str, object] = {"key": model_key, "query": vector_literal(vector), "limit": limit}
    restrict = ""
    if article_ids is not None:
        restrict = "AND article_id = ANY(:ids)"
        params["ids"] = list(article_ids)
    sql = f"""
        SELECT chunk_id, -(embedding <#> CAST(:query AS vector)) AS score FROM chunk_vectors
        WHERE model_key = :key {restrict}
        ORDER BY embedding <#> CAST(:query AS vector), chunk_id LIMIT :limit"""
    return [(int(row[0]), float(row[1])) for row in connection.execute(text(sql), params)]
