"""What the MCP server's tools do, over ctistudio's own services (no MCP types here, so it is testable alone).

Every method returns plain JSON-ready data; a ctistudio error becomes :class:`ToolRefused` with the
message and the fix, which the server hands to the agent as the tool's error text.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from ctistudio.config import Settings
from ctistudio.errors import CtiStudioError

MAX_CONTENT_CHARS = 6000  # an article's text as show_article returns it (the agent can ask for a run instead)
READ_ONLY_FIX = "Start the server with `ctistudio mcp --allow-writes` to let agents approve or reject rules."


class ToolRefused(Exception):
    """A tool call that cannot be done; ``str()`` is the message and the fix, for the agent to read."""


class StudioTools:
    """The tools' implementations. ``open()`` builds the store, gateway, pipeline and chat services."""

    def __init__(self, settings: Settings, *, allow_writes: bool = False) -> None:
        self.settings = settings
        self.allow_writes = allow_writes
        self._stack = AsyncExitStack()
        self.store: Any = None
        self.gateway: Any = None
        self.pipeline: Any = None
        self._chat: Any = None

    async def open(self) -> StudioTools:
        from ctistudio.llm import Gateway
        from ctistudio.pipeline.novelty import load_novelty_judge
        from ctistudio.pipeline.service import PipelineService
        from ctistudio.store import Store

        self.store = self._stack.enter_context(Store(self.settings))
        self.gateway = await self._stack.enter_async_context(Gateway(self.settings))
        self.pipeline = PipelineService(
            self.settings, self.store, self.gateway, novelty=load_novelty_judge(self.settings)
        )
        return self

    async def close(self) -> None:
        if self.pipeline is not None:
            for run_id in self.pipeline.runner.active():  # a run still going is marked cancelled (resumable)
                await self.pipeline.runner.cancel(run_id)
        await self._stack.aclose()

    @staticmethod
    def refused(error: CtiStudioError) -> ToolRefused:
        return ToolRefused(f"{error.message} Fix: {error.fix}" if error.fix else error.message)

    # -- reading ----------------------------------------------------------------------------------------
    def list_articles(self, search: str | None, limit: int) -> list[dict[str, Any]]:
        from ctistudio.store.articles import ArticleFilter, article_as_dict, list_articles

        with self.store.session() as session:
            rows = list_articles(session, ArticleFilter(search=search or None), limit=limit)
            return [article_as_dict(a) for a in rows]

    async def search(self, query: str, limit: int, rules: int) -> dict[str, Any]:
        from ctistudio.rag import Retriever, index_articles
        from ctistudio.store.chunks import articles_to_index

        retriever = Retriever(self.store, self.gateway)
        _, key = await retriever.embed(["ctistudio embedding probe"])
        with self.store.session() as session:
            pending = articles_to_index(session, key)
        if pending:
            await index_articles(retriever, pending)
        results = await retriever.search(query, limit=limit, rule_limit=rules)
        return {
            "query": query,
            "articles": [
                {
                    "article_id": c.article_id,
                    "title": c.title,
                    "url": c.url,
                    "score": round(c.score, 4),
                    "excerpt": " ".join(c.text.split())[:500],
                }
                for c in results.chunks
            ],
            "rules": [
                {
                    "title": r.title,
                    "rule_id": r.rule_id,
                    "source": r.source,
                    "path": r.path,
                    "queue_id": r.db_id,
                    "score": round(r.score, 4),
                }
                for r in results.rules
            ],
            "notes": results.notes,
        }

    def show_article(self, article_id: int) -> dict[str, Any]:
        from ctistudio.store.articles import article_as_dict, get_article
        from ctistudio.store.runs import list_runs

        with self.store.session() as session:
            data = article_as_dict(get_article(session, article_id), content=True)
            data["content"] = data["content"][:MAX_CONTENT_CHARS]
            data["runs"] = [{"id": r.id, "status": r.status} for r in list_runs(session, article_id=article_id)]
            for key in ("hunt_evidence", "platform_evidence", "extra"):
                data.pop(key, None)
            return data

    def show_run(self, run_id: int) -> dict[str, Any]:
        return self.pipeline.run_view(run_id).model_dump(mode="json")

    def show_rule(self, rule_id: int) -> dict[str, Any]:
        return self.pipeline.queue.show(rule_id).model_dump(mode="json")

    def list_queue(self, state: str) -> list[dict[str, Any]]:
        queue = self.pipeline.queue
        if state == "queued":
            rules = queue.list()
        elif state == "all":
            rules = queue.list(everything=True)
        else:
            rules = queue.list(state=state)
        return [r.model_dump(mode="json") for r in rules]

    async def ask(self, question: str, session_id: int | None, provider: str | None) -> dict[str, Any]:
        if self._chat is None:
            from ctistudio.rag import ChatService

            self._chat = ChatService(self.store, self.gateway)
        reply = await self._chat.ask(question, session_id=session_id, provider=provider)
        answer = reply.answer
        return {
            "session_id": reply.session_id,
            "answer": answer.text,
            "sources": [
                {
                    "number": s.number,
                    "kind": s.kind,
                    "title": s.title,
                    "url": s.url,
                    "article_id": s.article_id,
                    "rule_id": s.rule_id,
                    "cited": s.cited,
                }
                for s in answer.sources
            ],
            "provider": answer.provider,
            "model": answer.model,
        }

    # -- acting -----------------------------------------------------------------------------------------
    async def start_run(self, article_id: int, provider: str | None, force: bool) -> dict[str, Any]:
        run_id = await self.pipeline.start_run(article_id, provider=provider, force=force)
        return {"run_id": run_id, "status": "started", "next": f"call show_run with run_id={run_id} for progress"}

    def review(self, rule_id: int, decision: str, note: str | None) -> dict[str, Any]:
        if not self.allow_writes:
            raise ToolRefused(f"this MCP server is read-only, so it does not {decision} rules. Fix: {READ_ONLY_FIX}")
        queue = self.pipeline.queue
        rule = queue.approve(rule_id, note) if decision == "approve" else queue.reject(rule_id, note)
        return rule.model_dump(mode="json")
