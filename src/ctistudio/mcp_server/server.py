"""``ctistudio mcp``: ctistudio as an MCP server (the official ``mcp`` SDK), for IDE agents and assistants.

Tools: ``list_articles``, ``search`` (articles and Sigma rules), ``ask`` (the RAG chat), ``show_article``,
``show_run``, ``show_rule``, ``start_run`` (a pipeline run in this process), ``list_queue``, and
``approve_rule`` / ``reject_rule``, which refuse unless the server was started with ``--allow-writes``.
Transports: stdio (the default; what an IDE launches) and streamable HTTP on a loopback address.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from ctistudio import __version__
from ctistudio.config import Settings
from ctistudio.errors import CtiStudioError
from ctistudio.mcp_server.tools import StudioTools, ToolRefused

INSTRUCTIONS = (
    "ctistudio is a local cyber-threat-intelligence workbench: articles, pipeline runs that extract huntable "
    "observables and generate Sigma rules, a review queue, and a cited RAG chat over the library. Find "
    "article ids with list_articles or search, read them with show_article, start_run to analyse one, poll "
    "show_run until it finishes, then list_queue / show_rule to review the generated rules."
)
READ = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
QueueState = Literal["queued", "approved", "rejected", "all"]


def build_server(settings: Settings, *, allow_writes: bool = False) -> MCPServer:
    """The MCP server; its services open when a session starts and close when it ends."""
    tools = StudioTools(settings, allow_writes=allow_writes)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[None]:
        await tools.open()
        try:
            yield
        finally:
            await tools.close()

    server = MCPServer(
        "ctistudio", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan, log_level="WARNING"
    )

    async def guarded(call: Callable[[], Any]) -> Any:
        """Run a tool's body; a refusal or a ctistudio error becomes the tool's error text (message + fix)."""
        try:
            result = call()
            return await result if inspect.isawaitable(result) else result
        except ToolRefused as refused:
            raise ToolError(str(refused)) from None
        except CtiStudioError as error:
            raise ToolError(str(tools.refused(error))) from None

    @server.tool(annotations=READ)
    async def list_articles(search: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Stored articles, newest first (id, title, URL, hunt score, status); `search` filters title and text."""
        return await guarded(lambda: tools.list_articles(search, max(1, min(limit, 100))))

    @server.tool(annotations=READ)
    async def search(query: str, limit: int = 8, rules: int = 4) -> dict[str, Any]:
        """Hybrid search (meaning + keywords) over article passages and Sigma rules, best first."""
        return await guarded(lambda: tools.search(query, max(1, min(limit, 50)), max(0, min(rules, 20))))

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False, idempotentHint=False))
    async def ask(question: str, session_id: int | None = None, provider: str | None = None) -> dict[str, Any]:
        """Ask the RAG chat: a grounded answer citing the library's articles and rules as [n]; pass the
        returned session_id to ask a follow-up in the same conversation."""
        return await guarded(lambda: tools.ask(question, session_id, provider))

    @server.tool(annotations=READ)
    async def show_article(article_id: int) -> dict[str, Any]:
        """One article: metadata, hunt score, its text (first 6,000 characters) and its pipeline runs."""
        return await guarded(lambda: tools.show_article(article_id))

    @server.tool(annotations=READ)
    async def show_run(run_id: int) -> dict[str, Any]:
        """A pipeline run: status, each step's output and timings, observable counts, the generated rules."""
        return await guarded(lambda: tools.show_run(run_id))

    @server.tool(annotations=READ)
    async def show_rule(rule_id: int) -> dict[str, Any]:
        """A generated Sigma rule: YAML, validation issues, novelty verdict, similar SigmaHQ rules, review."""
        return await guarded(lambda: tools.show_rule(rule_id))

    @server.tool(annotations=READ)
    async def list_queue(state: QueueState = "queued") -> list[dict[str, Any]]:
        """The Sigma review queue: rules waiting for review (default), or approved, rejected or all rules."""
        return await guarded(lambda: tools.list_queue(state))

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False))
    async def start_run(article_id: int, provider: str | None = None, force: bool = False) -> dict[str, Any]:
        """Start the pipeline on an article (rank, extract, Sigma, novelty); returns at once with the run id.
        `force` runs extraction and Sigma even when the rank is below the threshold."""
        return await guarded(lambda: tools.start_run(article_id, provider, force))

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False))
    async def approve_rule(rule_id: int, note: str | None = None) -> dict[str, Any]:
        """Approve a valid rule (only when the server runs with --allow-writes)."""
        return await guarded(lambda: tools.review(rule_id, "approve", note))

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, openWorldHint=False))
    async def reject_rule(rule_id: int, note: str | None = None) -> dict[str, Any]:
        """Reject a rule (only when the server runs with --allow-writes)."""
        return await guarded(lambda: tools.review(rule_id, "reject", note))

    return server
