"""``ctistudio init``: the seed's ``setup.sh`` questions, written to ``.env``, then the connection test."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import typer

from ctistudio.cli import common
from ctistudio.cli.common import cli_errors, console, fail
from ctistudio.config import load_settings


def update_env_file(path: Path, values: dict[str, str]) -> None:
    """Set ``values`` in the .env file at ``path``, keeping every other line (and comments) as it was."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    pending = dict(values)
    out = []
    for line in lines:
        match = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        if match and match.group(1) in pending:
            out.append(f"{match.group(1)}={pending.pop(match.group(1))}")
        else:
            out.append(line)
    out.extend(f"{key}={value}" for key, value in pending.items())
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def register(app: typer.Typer) -> None:
    @app.command("init")
    @cli_errors
    def init_command(
        lmstudio_url: str | None = typer.Option(None, "--lmstudio-url", help="LM Studio server URL (blank: default)."),
        provider: str | None = typer.Option(None, "--provider", help="LLM_PROVIDER: auto or a provider name."),
        use_lmstudio: bool | None = typer.Option(None, "--lmstudio/--no-lmstudio", help="Use LM Studio."),
        model: str | None = typer.Option(None, "--model", help="LMSTUDIO_MODEL (default model)."),
        model_rank: str | None = typer.Option(None, "--model-rank"),
        model_extract: str | None = typer.Option(None, "--model-extract"),
        model_sigma: str | None = typer.Option(None, "--model-sigma"),
        openai_key: str | None = typer.Option(None, "--openai-key", help="OpenAI API key (optional)."),
        anthropic_key: str | None = typer.Option(None, "--anthropic-key", help="Anthropic API key (optional)."),
        env_file: Path = typer.Option(Path(".env"), "--env-file", help="File to write."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Don't ask: use flags and defaults."),
        skip_test: bool = typer.Option(False, "--skip-test", help="Don't run the connection test afterwards."),
    ) -> None:
        """Answer the set-up questions (or pass flags with --yes), write .env, then test the connection."""
        interactive = not yes and sys.stdin.isatty()
        current = load_settings(env_file=env_file)
        values: dict[str, str] = {}

        def ask(key: str, flag: str | None, question: str, default: str, secret: bool = False) -> None:
            if flag is not None:
                values[key] = flag
            elif interactive:
                answer = typer.prompt(question, default=default, hide_input=secret, show_default=not secret)
                if answer != "":
                    values[key] = answer

        if use_lmstudio is None and interactive:
            use_lmstudio = typer.confirm("Use LM Studio?", default=current.lmstudio_enabled)
        if use_lmstudio is not None:
            values["LMSTUDIO_ENABLED"] = str(use_lmstudio).lower()
        if use_lmstudio is not False:
            if lmstudio_url is not None:
                url = lmstudio_url.strip()
                if url:
                    url = url.rstrip("/")
                    values["LMSTUDIO_API_URL"] = url if url.endswith("/v1") else url + "/v1"
                    values["LMSTUDIO_EMBEDDING_URL"] = values["LMSTUDIO_API_URL"] + "/embeddings"
            elif interactive:
                answer = typer.prompt(
                    "LM Studio server URL (blank for the default)", default="", show_default=False
                ).strip()
                if answer:
                    answer = answer.rstrip("/")
                    values["LMSTUDIO_API_URL"] = answer if answer.endswith("/v1") else answer + "/v1"
                    values["LMSTUDIO_EMBEDDING_URL"] = values["LMSTUDIO_API_URL"] + "/embeddings"
            ask("LMSTUDIO_MODEL", model, "Default model (LMSTUDIO_MODEL)", current.lmstudio_model)
            ask("LMSTUDIO_MODEL_RANK", model_rank, "Model for ranking", current.lmstudio_model_rank)
            ask("LMSTUDIO_MODEL_EXTRACT", model_extract, "Model for extraction", current.lmstudio_model_extract)
            ask("LMSTUDIO_MODEL_SIGMA", model_sigma, "Model for Sigma generation", current.lmstudio_model_sigma)
        ask("OPENAI_API_KEY", openai_key, "OpenAI API key (blank: none)", "", secret=True)
        ask("ANTHROPIC_API_KEY", anthropic_key, "Anthropic API key (blank: none)", "", secret=True)
        if provider is not None:
            values["LLM_PROVIDER"] = provider
        values = {k: v for k, v in values.items() if v != ""}
        load_settings(values, env_file=None)  # refuse invalid values before writing anything
        update_env_file(env_file, values)
        shown = {k: ("(set)" if "KEY" in k else v) for k, v in values.items()}
        console.print(
            f"[green]wrote {env_file}[/]: " + (", ".join(f"{k}={v}" for k, v in shown.items()) or "no changes")
        )
        if skip_test:
            return
        common._settings = None  # re-read with the new .env
        from ctistudio.cli.llm import test_command

        try:
            test_command(provider=None, as_json=False)
        except typer.Exit as exit_:
            if exit_.exit_code:
                raise fail("the connection test failed; see the fixes above", code=exit_.exit_code) from None
