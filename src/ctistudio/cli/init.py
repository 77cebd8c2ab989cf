"""``ctistudio init``: the seed's ``setup.sh`` questions, written to ``.env``, then the connection test."""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer

from ctistudio.cli import common
from ctistudio.cli.common import cli_errors, console, fail
from ctistudio.config import Settings, load_settings, openai_api_base, openai_embeddings_url


def update_env_file(path: Path, values: dict[str, str]) -> None:
    """Set ``values`` in the .env file at ``path``, keeping every other line (and comments) as it was.

    The file holds keys and tokens: it is written readable by its owner only (0600), an existing one too."""
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
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(out) + "\n")
    os.chmod(path, 0o600)  # a file that existed keeps its old mode through open()


def lmstudio_urls(url: str) -> dict[str, str]:
    """``http://host:1234`` (with or without /v1) → LMSTUDIO_API_URL and LMSTUDIO_EMBEDDING_URL."""
    api = openai_api_base(url)
    return {"LMSTUDIO_API_URL": api, "LMSTUDIO_EMBEDDING_URL": openai_embeddings_url(api)}


class Questions:
    """Asks (interactive) or takes the flag's value (scripted); collects the answers as .env values."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive
        self.values: dict[str, str] = {}

    def ask(self, key: str, flag: str | None, question: str, default: str, *, secret: bool = False) -> None:
        if flag is not None:
            self.values[key] = flag
        elif self.interactive:
            answer = typer.prompt(question, default=default, hide_input=secret, show_default=not secret)
            if answer != "":
                self.values[key] = answer

    def confirm(self, flag: bool | None, question: str, default: bool) -> bool | None:
        if flag is None and self.interactive:
            return typer.confirm(question, default=default)
        return flag


def _ask_lmstudio(q: Questions, current: Settings, url: str | None, models: dict[str, str | None]) -> None:
    if url is not None:
        if url.strip():
            q.values.update(lmstudio_urls(url))
    elif q.interactive:
        answer = typer.prompt(
            "LM Studio server URL, e.g. http://192.168.1.65:1234 (blank for the default)",
            default="",
            show_default=False,
        )
        if answer.strip():
            q.values.update(lmstudio_urls(answer))
    q.ask("LMSTUDIO_MODEL", models["default"], "Default model (LMSTUDIO_MODEL)", current.lmstudio_model)
    q.ask("LMSTUDIO_MODEL_RANK", models["rank"], "Model for ranking", current.lmstudio_model_rank)
    q.ask("LMSTUDIO_MODEL_EXTRACT", models["extract"], "Model for extraction", current.lmstudio_model_extract)
    q.ask("LMSTUDIO_MODEL_SIGMA", models["sigma"], "Model for Sigma generation", current.lmstudio_model_sigma)


def register(app: typer.Typer) -> None:
    @app.command("init")
    @cli_errors
    def init_command(
        lmstudio_url: str | None = typer.Option(None, "--lmstudio-url", help="LM Studio server URL (blank: default)."),
        provider: str | None = typer.Option(None, "--provider", help="LLM_PROVIDER: auto or a provider name."),
        use_lmstudio: bool | None = typer.Option(None, "--lmstudio/--no-lmstudio", help="Use LM Studio."),
        model: str | None = typer.Option(None, "--model", help="LMSTUDIO_MODEL (default model)."),
        model_rank: str | None = typer.Option(None, "--model-rank", help="LMSTUDIO_MODEL_RANK."),
        model_extract: str | None = typer.Option(None, "--model-extract", help="LMSTUDIO_MODEL_EXTRACT."),
        model_sigma: str | None = typer.Option(None, "--model-sigma", help="LMSTUDIO_MODEL_SIGMA."),
        openai_key: str | None = typer.Option(None, "--openai-key", help="OpenAI API key (optional)."),
        anthropic_key: str | None = typer.Option(None, "--anthropic-key", help="Anthropic API key (optional)."),
        api_token: bool | None = typer.Option(
            None,
            "--api-token/--no-api-token",
            help="Write a new random CTISTUDIO_API_TOKEN (needed to serve beyond this machine).",
        ),
        env_file: Path = typer.Option(Path(".env"), "--env-file", help="File to write."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Don't ask: use the flags and the defaults."),
        skip_test: bool = typer.Option(False, "--skip-test", help="Don't run the connection test afterwards."),
    ) -> None:
        """Answer the set-up questions (or pass flags with --yes), write .env, then test the connection."""
        current = load_settings(env_file=env_file)
        q = Questions(interactive=not yes)
        use_lmstudio = q.confirm(use_lmstudio, "Use LM Studio?", current.lmstudio_enabled)
        if use_lmstudio is not None:
            q.values["LMSTUDIO_ENABLED"] = str(use_lmstudio).lower()
        if use_lmstudio is not False:
            models = {"default": model, "rank": model_rank, "extract": model_extract, "sigma": model_sigma}
            _ask_lmstudio(q, current, lmstudio_url, models)
        q.ask("OPENAI_API_KEY", openai_key, "OpenAI API key (blank: none)", "", secret=True)
        q.ask("ANTHROPIC_API_KEY", anthropic_key, "Anthropic API key (blank: none)", "", secret=True)
        q.ask("LLM_PROVIDER", provider, "Provider: auto (the fallback chain) or one name", current.llm_provider)
        if q.confirm(api_token, "Generate an API token (needed to serve the web app beyond this machine)?", False):
            from ctistudio.web.security import new_api_token

            q.values["CTISTUDIO_API_TOKEN"] = new_api_token()
        values = {k: v for k, v in q.values.items() if v != ""}
        load_settings(values, env_file=None)  # refuse invalid values before writing anything
        update_env_file(env_file, values)
        shown = {k: ("(set)" if "KEY" in k or "TOKEN" in k else v) for k, v in values.items()}
        console.print(
            f"[green]wrote {env_file}[/]: " + (", ".join(f"{k}={v}" for k, v in shown.items()) or "no changes")
        )
        if skip_test:
            return
        common.use_settings(load_settings(env_file=env_file))  # the test sees what was just written
        from ctistudio.cli.llm import test_command

        try:
            test_command(provider=None, as_json=False)
        except typer.Exit as exit_:
            if exit_.exit_code:
                raise fail("the connection test failed; see the fixes above", code=exit_.exit_code) from None
