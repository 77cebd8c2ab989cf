"""``ctistudio demo``: the main job of the quick start — the demo article through the product."""

from __future__ import annotations

import sys

import typer

from ctistudio.cli.common import cli_errors, err_console, run, settings
from ctistudio.llm import Gateway
from ctistudio.resources import demo_article


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @cli_errors
    def demo_command(
        provider: str | None = typer.Option(None, "--provider", "-p", help="Provider (default: LLM_PROVIDER)."),
    ) -> None:
        """Run the demo article through the gateway and stream a hunting summary."""
        article = demo_article()

        async def go() -> None:
            async with Gateway(settings()) as gateway:
                err_console.print(f"[dim]providers: {', '.join(gateway.chain_names(provider))}[/]")
                stream = gateway.stream(
                    [
                        {"role": "system", "content": "You are a detection engineer. Be brief."},
                        {
                            "role": "user",
                            "content": "List the three most huntable behaviours in this report:\n\n" + article,
                            "truncatable": True,
                        },
                    ],
                    provider=provider,
                    max_tokens=300,
                )
                async for delta in stream:
                    sys.stdout.write(delta.text)
                    sys.stdout.flush()
                    if delta.done and delta.result:
                        sys.stdout.write("\n")
                        err_console.print(f"[dim]{delta.result.provider}/{delta.result.model}[/]")

        run(go())
