"""``ctistudio chat [QUESTION]``: ask the library — one question, or an interactive session in the terminal.

Answers stream as they are generated, then the sources ([n] → article title and URL, or rule id) and the
figures of the reply (provider, model, retrieval time, time to first token, tokens/s). In a session,
``/provider NAME`` switches provider for the next questions (the conversation is kept), ``/new`` starts
over, ``/quit`` (or Ctrl-D) leaves.
"""

from __future__ import annotations

import sys

import typer

from ctistudio.cli.common import cli_errors, console, err_console, print_json, run, settings
from ctistudio.cli.rag import index_pending
from ctistudio.cli.search import filters_from_options
from ctistudio.errors import CtiStudioError
from ctistudio.llm import Gateway
from ctistudio.rag import ChatReply, ChatService, RagAnswer, SearchFilters
from ctistudio.store import Store

HELP = "Commands: /provider NAME (auto, lmstudio, embedded, openai …), /new, /quit."


def print_reply_footer(reply: ChatReply) -> None:
    answer = reply.answer
    for source in answer.sources:
        mark = "*" if source.cited else " "
        where = source.url or (f"rule {source.rule_id}" if source.rule_id else "") or source.path or ""
        console.print(f" {mark}[{source.number}] {source.title} — {where}", highlight=False, soft_wrap=True)
    t = answer.timings
    figures = [f"provider {answer.provider or '–'}", f"model {answer.model or '–'}"]
    if t.retrieval_ms is not None:
        figures.append(f"retrieval {t.retrieval_ms:.0f} ms")
    if t.time_to_first_token_s is not None:
        figures.append(f"first token {t.time_to_first_token_s:.2f} s")
    if t.generation_tokens_per_s:
        figures.append(f"{t.generation_tokens_per_s:.1f} tokens/s")
    if answer.dropped_sources:
        figures.append(f"{answer.dropped_sources} source(s) left out to fit the context")
    figures += server_figures(answer)
    console.print("[dim]" + " · ".join(figures) + "[/]", highlight=False)


def server_figures(answer: RagAnswer) -> list[str]:
    """What the server said about the answer (LM Studio's stateful chat: its ``stats``) and the thread."""
    if not answer.stateful:
        return []
    stats = answer.server_stats or {}
    out = ["thread continued" if answer.continued_thread else "new thread"]
    if stats.get("input_tokens") is not None:
        out.append(f"server: {stats['input_tokens']:,} input / {stats.get('total_output_tokens') or 0:,} output tokens")
    if stats.get("reasoning_output_tokens"):
        out.append(f"{stats['reasoning_output_tokens']:,} reasoning tokens")
    if stats.get("model_load_time_seconds"):
        out.append(f"model loaded in {stats['model_load_time_seconds']:.1f} s")
    return out


async def ask_and_print(
    service: ChatService, question: str, *, session_id: int | None, provider: str | None, filters: SearchFilters
) -> ChatReply:
    """Stream one answer to the terminal; returns the stored reply."""
    reply: ChatReply | None = None
    async for event in service.ask_stream(question, session_id=session_id, provider=provider, filters=filters):
        if event.type == "token":
            sys.stdout.write(event.data["text"])
            sys.stdout.flush()
        elif event.type == "done":
            reply = ChatReply.model_validate(event.data)
    sys.stdout.write("\n")
    assert reply is not None
    print_reply_footer(reply)
    return reply


async def _one_shot(question: str, provider: str | None, session_id: int | None, filters: SearchFilters, as_json: bool):
    s = settings()
    async with Gateway(s) as gateway:
        with Store(s) as store:
            service = ChatService(store, gateway)
            await index_pending(service.retriever)
            if as_json:
                reply = await service.ask(question, session_id=session_id, provider=provider, filters=filters)
                print_json(reply)
            else:
                await ask_and_print(service, question, session_id=session_id, provider=provider, filters=filters)


async def _interactive(provider: str | None, session_id: int | None, filters: SearchFilters) -> None:
    s = settings()
    async with Gateway(s) as gateway:
        with Store(s) as store:
            service = ChatService(store, gateway)
            await index_pending(service.retriever)
            console.print(f"ctistudio chat — provider {provider or s.llm_provider}. {HELP}", highlight=False)
            while True:
                try:
                    line = console.input("[bold]you>[/] ").strip()
                except EOFError:
                    console.print()
                    return
                if not line:
                    continue
                if line in ("/quit", "/exit"):
                    return
                if line == "/new":
                    session_id = None
                    console.print("[dim]new conversation[/]")
                    continue
                if line.startswith("/provider"):
                    provider = line.removeprefix("/provider").strip() or None
                    console.print(f"[dim]provider: {provider or s.llm_provider}[/]", highlight=False)
                    continue
                if line.startswith("/"):
                    console.print(HELP, highlight=False)
                    continue
                try:
                    reply = await ask_and_print(
                        service, line, session_id=session_id, provider=provider, filters=filters
                    )
                    session_id = reply.session_id
                except CtiStudioError as error:  # a failed question must not end the session
                    err_console.print(f"[bold red]error:[/] {error.message}", highlight=False)
                    if error.fix:
                        err_console.print(f"[bold]fix:[/] {error.fix}", highlight=False)


def register(app: typer.Typer) -> None:
    @app.command("chat")
    @cli_errors
    def chat_command(
        question: str | None = typer.Argument(None, help="Ask one question; omit for an interactive session."),
        provider: str | None = typer.Option(None, "--provider", "-p", help="auto, lmstudio, embedded, openai …"),
        session: int | None = typer.Option(None, "--session", help="Continue this chat session id."),
        source: str | None = typer.Option(None, "--source", help="Only articles of this source id."),
        platform: str | None = typer.Option(None, "--platform", help="windows, linux, macos or cloud."),
        min_hunt_score: int | None = typer.Option(None, "--min-hunt-score", min=0, max=100),
        since: str | None = typer.Option(None, "--since", help="Articles published on or after (YYYY-MM-DD)."),
        until: str | None = typer.Option(None, "--until", help="Articles published before (YYYY-MM-DD)."),
        as_json: bool = typer.Option(False, "--json", help="One-shot only: print the reply as JSON."),
    ) -> None:
        """Ask the library (RAG over articles and Sigma rules), with cited, streamed answers."""
        filters = filters_from_options(source, platform, min_hunt_score, since, until)
        if question:
            run(_one_shot(question, provider, session, filters, as_json))
        else:
            run(_interactive(provider, session, filters))
