"""RAG chat and semantic search over articles and Sigma rules.

- :mod:`~ctistudio.rag.chunking` — token-aware chunks with overlap;
- :mod:`~ctistudio.rag.indexing` — ``index_after_ingest`` (best effort, after ingest), ``index_articles`` and
  ``backfill`` (existing articles);
- :mod:`~ctistudio.rag.search` — ``Retriever.search``: vectors + keywords fused (RRF), filters, rules;
- :mod:`~ctistudio.rag.answer` — ``generate_rag_response`` / ``stream_rag_response`` (grounded, cited);
- :mod:`~ctistudio.rag.chat` — ``ChatService``: sessions, last N turns, streaming events for the web.
"""

from ctistudio.rag.answer import AnswerEvent, RagAnswer, generate_rag_response, stream_rag_response
from ctistudio.rag.chat import ChatEvent, ChatReply, ChatService, sse_stream
from ctistudio.rag.chunking import TextChunk, chunk_text, estimate_tokens
from ctistudio.rag.indexing import IndexReport, IngestIndexing, backfill, index_after_ingest, index_articles
from ctistudio.rag.prompt import Source
from ctistudio.rag.search import ChunkResult, Retriever, RuleResult, SearchFilters, SearchResults

__all__ = [
    "AnswerEvent",
    "ChatEvent",
    "ChatReply",
    "ChatService",
    "ChunkResult",
    "IndexReport",
    "IngestIndexing",
    "RagAnswer",
    "Retriever",
    "RuleResult",
    "SearchFilters",
    "SearchResults",
    "Source",
    "TextChunk",
    "backfill",
    "chunk_text",
    "estimate_tokens",
    "generate_rag_response",
    "index_after_ingest",
    "index_articles",
    "sse_stream",
    "stream_rag_response",
]
