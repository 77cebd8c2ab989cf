"""``ctistudio llm``: connection test, model list, model loading and a streaming chat."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from ctistudio.cli.common import cli_errors, console, err_console, fail, print_json, run, settings
from ctistudio.llm import Gateway, Task
from ctistudio.llm.diagnostics import ConnectionReport, connection_report

app = typer.Typer(help="Talk to LLM providers: test connections, list and load models, chat.", no_args_is_help=True)

# The window `llm load` asks for when neither --context-length nor LMSTUDIO_MAX_CONTEXT says: ranking's
# recommended size (the seed: 8,192 minimum, 16,384–32,768 for article scoring).
DEFAULT_LOAD_CONTEXT = 16384

ProviderOpt = typer.Option(None, "--provider", "-p", help="Provider name (default: LLM_PROVIDER; 'auto' = the chain).")


def _provider_names(gateway: Gateway, provider: str | None) -> list[str]:
    return gateway.chain_names(provider)


def _print_report(report: ConnectionReport) -> None:
    mark = {True: "[green]✔[/]", False: "[red]✘[/]"}
    console.print(f"[bold]{report.provider}[/] {report.url or ''}", highlight=False)
    for check in report.checks:
        symbol = mark[check.ok] if check.ok or check.level == "error" else "[yellow]![/]"
        console.print(f"  {symbol} {check.name}: {check.detail}", highlight=False, soft_wrap=True)
        if check.fix:
            console.print(f"      [dim]fix:[/] {check.fix}", highlight=False, soft_wrap=True)
    status = "[green]all checks passed[/]" if report.ok else "[red]some checks failed[/]"
    console.print(f"  → {status} in {report.duration_s:.2f}s")


@app.command("test")
@cli_errors
def test_command(
    provider: str | None = ProviderOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check connectivity, auth, models, loaded context, a one-token completion and embeddings."""

    s = settings()

    async def go() -> list[ConnectionReport]:
        async with Gateway(s) as gateway:
            return [  # one report per inference host (LMSTUDIO_API_URL may list several)
                await connection_report(host, embeddings_required=s.embedding_provider == name)
                for name in _provider_names(gateway, provider)
                for host in gateway.provider(name).hosts()
            ]

    reports = run(go())
    if as_json:
        print_json({"ok": all(r.ok for r in reports), "reports": reports})
    else:
        for report in reports:
            _print_report(report)
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


@app.command("models")
@cli_errors
def models_command(
    provider: str | None = ProviderOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the models as JSON."),
) -> None:
    """List the models each provider offers, with loaded state and context length."""

    async def go():
        async with Gateway(settings()) as gateway:
            out = []
            for name in _provider_names(gateway, provider):
                out.extend(await gateway.provider(name).models())
            return out

    models = run(go())
    if as_json:
        print_json(models)
        return
    table = Table("provider", "model", "loaded", "context", "max context", "type", "quant")
    for m in models:
        table.add_row(
            m.provider,
            m.id,
            {True: "yes", False: "no", None: "?"}[m.loaded],
            f"{m.context_length:,}" if m.context_length else "-",
            f"{m.max_context_length:,}" if m.max_context_length else "-",
            m.type or "-",
            m.quantization or "-",
        )
    console.print(table)


@app.command("load")
@cli_errors
def load_command(
    model: str | None = typer.Argument(None, help="Model key (default: LMSTUDIO_MODEL)."),
    context_length: int | None = typer.Option(
        None, "--context-length", "-c", min=512, help="Context window in tokens (default: LMSTUDIO_MAX_CONTEXT)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Load a model in LM Studio with a context length; reuses a loaded instance that is big enough.

    Without arguments: LMSTUDIO_MODEL with LMSTUDIO_MAX_CONTEXT (else 16,384, what article ranking needs).
    """
    s = settings()
    model = model or s.lmstudio_model
    context_length = context_length or s.lmstudio_max_context or DEFAULT_LOAD_CONTEXT

    async def go():
        from ctistudio.llm.providers.lmstudio import LMStudioProvider

        async with Gateway(s) as gateway:
            provider = gateway.provider("lmstudio")
            assert isinstance(provider, LMStudioProvider)
            return await provider.load(model, context_length)

    result = run(go())
    if as_json:
        print_json(result)
        return
    if result.reused:
        console.print(
            f"[green]already loaded:[/] {result.instance_id} with {result.context_length or '?'} tokens "
            f"(≥ {context_length:,} asked; not loaded again)"
        )
    else:
        extra = f" in {result.load_time_seconds:.1f}s" if result.load_time_seconds else ""
        console.print(f"[green]loaded:[/] {result.instance_id} with {result.context_length or 'default'} tokens{extra}")
        for instance in result.unloaded:
            console.print(f"  (unloaded the smaller instance {instance} first)")
        for instance, reason in result.kept.items():
            err_console.print(
                f"[yellow]note:[/] the smaller instance {instance} is still loaded ({reason}); "
                f"requests that name {result.model} may still reach it. Unload it in LM Studio "
                f"(`lms unload {instance}`), or point the task at the new instance "
                f"(e.g. LMSTUDIO_MODEL_RANK={result.instance_id}).",
                highlight=False,
            )


@app.command("chat")
@cli_errors
def chat_command(
    prompt: str = typer.Argument(..., help="What to ask ('-' reads standard input)."),
    provider: str | None = ProviderOpt,
    task: Task = typer.Option(Task.CHAT, "--task", "-t", help="Task whose model answers."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model (default: the task's configured model)."),
    max_tokens: int = typer.Option(512, "--max-tokens", min=1),
) -> None:
    """Stream an answer to PROMPT."""
    text = sys.stdin.read() if prompt == "-" else prompt

    async def go():
        async with Gateway(settings()) as gateway:
            async for delta in gateway.stream(text, task=task, provider=provider, model=model, max_tokens=max_tokens):
                if delta.text:
                    sys.stdout.write(delta.text)
                    sys.stdout.flush()
                if delta.done and delta.result:
                    return delta.result
        return None

    result = run(go())
    sys.stdout.write("\n")
    if result is None:
        raise fail("the provider ended the stream without an answer")
    t = result.timings
    rate = f", {t.generation_tokens_per_s:.1f} tok/s" if t.generation_tokens_per_s else ""
    ttft = f", first token {t.time_to_first_token:.2f}s" if t.time_to_first_token is not None else ""
    err_console.print(f"[dim]{result.provider}/{result.model}: {t.total:.2f}s{ttft}{rate}[/]", highlight=False)
