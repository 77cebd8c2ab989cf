"""The MCP tests reuse the export tests' demo article, store and LM Studio double."""

from tests.export.conftest import analyst, demo_article_id, demo_run, store

__all__ = ["analyst", "demo_article_id", "demo_run", "store"]
