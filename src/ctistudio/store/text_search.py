"""Keyword search: SQLite FTS5 or PostgreSQL full text over chunks, and a small in-memory FTS5 index.

The keyword index of chunks is derived data, like the vectors: :func:`ensure_chunk_text_index` creates it
on first use (SQLite: an FTS5 table of chunk text and article title kept in step with ``chunks`` by
triggers; PostgreSQL: a table ``chunk_text_search`` of each chunk's ``to_tsvector('english', …)`` of text
and article title, with GIN indexes, kept in step by triggers and ``ON DELETE CASCADE``) and
:func:`rebuild_chunk_text_index` rebuilds it. It is kept out of the migrations on purpose, so the schema
stays exactly what the models describe (and the store's schema comparison stays exact).

Queries are free text: :func:`keyword_terms` keeps the words that carry meaning (no stop words) and the
engines rank chunks holding ANY of them with BM25 (FTS5) or ``ts_rank_cd`` (PostgreSQL).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ctistudio.store.chunks import UNSEARCHABLE_STATUSES

MAX_TERMS = 24
_WORDS = re.compile(r"[^\W_]+")
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most my
    myself no nor not now of off on once only or other our ours ourselves out over own same she should so
    some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves tell me please show give find list explain describe know any anything""".split()  # noqa: SIM905
)

# The FTS5 table keeps its own copy of each chunk's text with its article's title (a title word such as
# "credential" should find the article's chunks); triggers keep it in step with ``chunks``.
_SQLITE_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(title, text, tokenize='porter unicode61')",
    "CREATE TRIGGER IF NOT EXISTS chunks_fts_insert AFTER INSERT ON chunks BEGIN "
    "INSERT INTO chunks_fts(rowid, title, text) "
    "VALUES (new.id, (SELECT title FROM articles WHERE id = new.article_id), new.text); END",
    "CREATE TRIGGER IF NOT EXISTS chunks_fts_delete AFTER DELETE ON chunks BEGIN "
    "DELETE FROM chunks_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER IF NOT EXISTS chunks_fts_update AFTER UPDATE OF text ON chunks BEGIN "
    "UPDATE chunks_fts SET text = new.text WHERE rowid = new.id; END",
)
_SQLITE_REBUILD = (
    "DELETE FROM chunks_fts",
    "INSERT INTO chunks_fts(rowid, title, text) "
    "SELECT c.id, a.title, c.text FROM chunks AS c JOIN articles AS a ON a.id = c.article_id",
)
_SQLITE_OBJECTS = {"chunks_fts", "chunks_fts_insert", "chunks_fts_delete", "chunks_fts_update"}
# PostgreSQL: the tsvectors are stored (computed once, when a chunk is written) in a derived table kept in
# step by triggers — ranking with ts_rank_cd then reads them instead of parsing every matching chunk's text
# again on each query (seconds at 20,000 chunks when a query word is common).
_PG_DDL = (
    "DROP INDEX IF EXISTS ix_chunks_text_fts",  # the expression indexes of earlier versions, now unused
    "DROP INDEX IF EXISTS ix_articles_title_fts",
    "CREATE TABLE IF NOT EXISTS chunk_text_search ("
    " chunk_id integer PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,"
    " article_id integer NOT NULL, text_tsv tsvector NOT NULL, title_tsv tsvector NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_chunk_text_search_text ON chunk_text_search USING gin (text_tsv)",
    "CREATE INDEX IF NOT EXISTS ix_chunk_text_search_title ON chunk_text_search USING gin (title_tsv)",
    "CREATE INDEX IF NOT EXISTS ix_chunk_text_search_article ON chunk_text_search (article_id)",
    """CREATE OR REPLACE FUNCTION chunk_text_search_upsert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO chunk_text_search (chunk_id, article_id, text_tsv, title_tsv)
        SELECT NEW.id, NEW.article_id, to_tsvector('english', NEW.text), to_tsvector('english', a.title)
        FROM articles AS a WHERE a.id = NEW.article_id
        ON CONFLICT (chunk_id) DO UPDATE SET text_tsv = EXCLUDED.text_tsv, title_tsv = EXCLUDED.title_tsv;
        RETURN NULL;
    END $$""",
    """CREATE OR REPLACE FUNCTION chunk_text_search_title() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE chunk_text_search SET title_tsv = to_tsvector('english', NEW.title) WHERE article_id = NEW.id;
        RETURN NULL;
    END $$""",
    "DROP TRIGGER IF EXISTS chunk_text_search_write ON chunks",
    "CREATE TRIGGER chunk_text_search_write AFTER INSERT OR UPDATE OF text ON chunks "
    "FOR EACH ROW EXECUTE FUNCTION chunk_text_search_upsert()",
    "DROP TRIGGER IF EXISTS chunk_text_search_title ON articles",
    "CREATE TRIGGER chunk_text_search_title AFTER UPDATE OF title ON articles "
    "FOR EACH ROW EXECUTE FUNCTION chunk_text_search_title()",
)
_PG_FILL = (  # chunks written before the table existed (or while it was dropped)
    "INSERT INTO chunk_text_search (chunk_id, article_id, text_tsv, title_tsv) "
    "SELECT c.id, c.article_id, to_tsvector('english', c.text), to_tsvector('english', a.title) "
    "FROM chunks AS c JOIN articles AS a ON a.id = c.article_id "
    "WHERE NOT EXISTS (SELECT 1 FROM chunk_text_search AS t WHERE t.chunk_id = c.id)"
)

_ensured: set[str] = set()
_ensure_lock = threading.Lock()


def keyword_terms(query: str) -> list[str]:
    """The searchable words of ``query``: lower-case, no stop words or single letters, no repeats."""
    seen: dict[str, None] = {}
    for word in _WORDS.findall(query.lower()):
        if len(word) > 1 and word not in STOP_WORDS:
            seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


def fts5_match(terms: Iterable[str]) -> str:
    """An FTS5 MATCH expression: any of ``terms`` (each quoted, so no FTS5 syntax can slip in)."""
    return " OR ".join('"' + term.replace('"', "") + '"' for term in terms)


def ensure_chunk_text_index(engine: Engine) -> None:
    """Create the keyword index of chunks if it is missing (once per process and database)."""
    key = str(engine.url)
    if key in _ensured:
        return
    with _ensure_lock, engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            present = {
                row[0]
                for row in connection.execute(text("SELECT name FROM sqlite_master WHERE name LIKE 'chunks_fts%'"))
            }
            if not present >= _SQLITE_OBJECTS:
                for statement in _SQLITE_DDL + _SQLITE_REBUILD:  # chunks written without the triggers
                    connection.execute(text(statement))
        elif connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(7461)"))  # one process creates the triggers
            triggers = connection.execute(
                text("SELECT 1 FROM pg_trigger WHERE tgname = 'chunk_text_search_write' AND NOT tgisinternal")
            ).scalar()
            if not triggers:
                for statement in _PG_DDL:
                    connection.execute(text(statement))
                connection.execute(text(_PG_FILL))
        _ensured.add(key)


def rebuild_chunk_text_index(engine: Engine) -> None:
    """Rebuild the keyword index from the chunks table (after a bulk load or to repair it)."""
    ensure_chunk_text_index(engine)
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            for statement in _SQLITE_REBUILD:
                connection.execute(text(statement))
        elif connection.dialect.name == "postgresql":
            connection.execute(text("DELETE FROM chunk_text_search"))
            connection.execute(text(_PG_FILL))


def keyword_search_chunks(
    connection: Connection, query: str, *, limit: int = 50, article_ids: list[int] | None = None
) -> list[tuple[int, float]]:
    """``(chunk id, score)`` of the chunks best matching ``query``'s words, best first (higher = better).

    ``article_ids`` restricts the search to those articles (``[]`` matches nothing). Chunks of duplicate
    or junk articles are never returned.
    """
    terms = keyword_terms(query)
    if not terms or article_ids == []:
        return []
    if connection.dialect.name != "sqlite":
        return _postgres_keyword_search(connection, terms, limit, article_ids)
    # Rank inside FTS5 first (BM25 over the matches only), then join the best few to their articles and
    # drop hidden or filtered-out ones; widen the inner ranking only when too few survive.
    restrict = "AND c.article_id IN (SELECT value FROM json_each(:ids))" if article_ids is not None else ""
    sql = f"""
        SELECT best.id, best.score FROM (
            SELECT rowid AS id, -bm25(chunks_fts) AS score FROM chunks_fts
            WHERE chunks_fts MATCH :match ORDER BY bm25(chunks_fts) LIMIT :inner
        ) AS best
        JOIN chunks AS c ON c.id = best.id
        JOIN articles AS a ON a.id = c.article_id
        WHERE a.status NOT IN (SELECT value FROM json_each(:hidden)) {restrict}
        ORDER BY best.score DESC LIMIT :limit"""
    params: dict[str, object] = {
        "limit": limit,
        "match": fts5_match(terms),
        "hidden": json.dumps(list(UNSEARCHABLE_STATUSES)),
    }
    if article_ids is not None:
        params["ids"] = json.dumps(article_ids)
    first = limit * 4
    if article_ids is not None:  # expect the filter to keep its share of articles' chunks
        total = int(connection.execute(text("SELECT count(*) FROM articles")).scalar() or 0)
        first = limit * 4 * max(1, -(-total // max(len(article_ids), 1)))
    rows: list[tuple[int, float]] = []
    for inner in (first, first * 16, -1):  # -1: no limit, every match ranked
        rows = [(int(r[0]), float(r[1])) for r in connection.execute(text(sql), {**params, "inner": inner})]
        if len(rows) >= limit:
            break
    return rows


def _postgres_keyword_search(
    connection: Connection, terms: list[str], limit: int, article_ids: list[int] | None
) -> list[tuple[int, float]]:
    params: dict[str, object] = {"limit": limit, "match": " | ".join(terms), "hidden": list(UNSEARCHABLE_STATUSES)}
    restrict = ""
    if article_ids is not None:
        restrict = "AND c.article_id = ANY(:ids)"
        params["ids"] = article_ids
    sql = f"""
        SELECT c.chunk_id, ts_rank_cd(c.text_tsv, q) + 0.5 * ts_rank_cd(c.title_tsv, q) AS score
        FROM chunk_text_search AS c JOIN articles AS a ON a.id = c.article_id, to_tsquery('english', :match) AS q
        WHERE (c.text_tsv @@ q OR c.title_tsv @@ q) AND a.status <> ALL(:hidden) {restrict}
        ORDER BY score DESC, c.chunk_id LIMIT :limit"""
    return [(int(row[0]), float(row[1])) for row in connection.execute(text(sql), params)]


class MemoryTextIndex:
    """An in-memory FTS5 index of a small collection (Sigma rules): ``add`` documents, ``search`` words.

    Uses the standard library's SQLite, whatever database the store runs on. Not thread-safe for writes;
    searches take a lock so one index can serve a web app's threads.
    """

    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute("CREATE VIRTUAL TABLE docs USING fts5(body, tokenize='porter unicode61')")
        self._lock = threading.Lock()
        self.size = 0

    def add(self, documents: Iterable[tuple[int, str]]) -> None:
        """Add ``(position, text)`` pairs; ``position`` is what :meth:`search` returns."""
        with self._lock:
            rows = list(documents)
            self._db.executemany("INSERT INTO docs(rowid, body) VALUES (?, ?)", rows)
            self.size += len(rows)

    def search(self, query: str, *, limit: int = 50) -> list[tuple[int, float]]:
        """``(position, score)`` best first (higher = better) for documents holding any word of ``query``."""
        terms = keyword_terms(query)
        if not terms or not self.size:
            return []
        sql = "SELECT rowid, -bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT ?"
        with self._lock:
            return [(int(r[0]), float(r[1])) for r in self._db.execute(sql, (fts5_match(terms), limit))]

    def close(self) -> None:
        self._db.close()
