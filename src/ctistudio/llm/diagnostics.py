"""The connection report behind ``ctistudio llm test`` and ``POST /api/test-lmstudio``.

Each check says what was found and, when it fails, the fix from the seed's troubleshooting list. The
report is ``ok`` only when no check failed (warnings, such as a context below the recommended size but
above the minimum, do not fail it).
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

from ctistudio.llm.context import TASK_CONTEXT_NEEDS
from ctistudio.llm.errors import AuthenticationFailed, LLMError, PlatformUnsupported, Unsupported
from ctistudio.llm.provider import Provider
from ctistudio.llm.types import ChatRequest, Message, ModelInfo, Task

Level = Literal["error", "warning", "info"]


class Check(BaseModel):
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    level: Level = "error"  # a failed "warning" does not fail the report


class ConnectionReport(BaseModel):
    provider: str
    ok: bool = False
    url: str | None = None
    checks: list[Check] = Field(default_factory=list)
    duration_s: float = 0.0

    def add(self, name: str, ok: bool, detail: str, fix: str | None = None, level: Level = "error") -> Check:
        check = Check(name=name, ok=ok, detail=detail, fix=None if ok else fix, level=level)
        self.checks.append(check)
        return check


async def connection_report(provider: Provider, *, embeddings_required: bool = False) -> ConnectionReport:
    """Probe ``provider`` and return the structured report (never raises for provider failures).

    ``embeddings_required``: this provider makes the product's embeddings, so a failed embedding check fails
    the report (otherwise it is a warning).
    """
    started = time.perf_counter()
    report = ConnectionReport(provider=provider.name)
    try:
        await _run_checks(provider, report, embeddings_required)
    finally:
        report.duration_s = round(time.perf_counter() - started, 3)
        report.ok = all(c.ok or c.level != "error" for c in report.checks) and bool(report.checks)
    return report


async def _run_checks(provider: Provider, report: ConnectionReport, embeddings_required: bool) -> None:
    # Set first: the report's header names the URL whatever fails below (a 401 included).
    report.url = getattr(provider, "base_url", None)
    reachable = "engine ready" if provider.in_process else "server reachable"
    # 1. reachable + auth
    try:
        models = await provider.models()
    except PlatformUnsupported as error:  # nothing else is worth checking on this machine
        report.add("platform", False, error.message, error.fix)
        return
    except AuthenticationFailed as error:
        report.add(reachable, True, f"answered at {report.url or '?'}")
        report.add("authentication", False, error.message, error.fix or provider.fix_for("auth"))
        return
    except LLMError as error:
        report.add(reachable, False, error.message, getattr(error, "fix", None) or provider.fix_for("connect"))
        return
    report.add(reachable, True, f"answered at {report.url}" if report.url else "ready")
    has_key = bool(getattr(getattr(provider, "transport", None), "api_key", None))
    report.add("authentication", True, "API key accepted" if has_key else "no key required", level="info")

    # 2. models
    if models:
        loaded = [m.id for m in models if m.loaded]
        report.add(
            "models available",
            True,
            f"{len(models)} model(s), {len(loaded)} loaded" + (f": {', '.join(loaded[:5])}" if loaded else ""),
        )
    else:
        report.add("models available", False, "the server lists no models", provider.fix_for("model"))

    # 3. configured models: present, loaded, context against each task's need
    by_model: dict[str, list[str]] = {}
    for task in ("rank", "extract", "sigma", "chat"):
        model = provider.model_for(task)
        if model:
            by_model.setdefault(model, []).append(task)
    index = {m.id: m for m in models}
    for instance_model in models:
        for instance in instance_model.instances:
            index.setdefault(instance, instance_model)
    for model, tasks in by_model.items():
        await _check_model(provider, report, model, tasks, index.get(model), bool(models))

    # 4. a real one-token completion, on a model that is loaded (JIT would load one at a default context)
    model = _completion_model(provider, index)
    if model is None:
        report.add(
            "completion",
            False,
            "skipped: none of the configured models is loaded",
            provider.context_fix(provider.model_for(Task.CHAT) or "MODEL", TASK_CONTEXT_NEEDS["chat"][1]),
        )
    else:
        await _check_completion(provider, report, model)

    # 5. embeddings
    await _check_embeddings(provider, report, embeddings_required)


def _completion_model(provider: Provider, index: dict[str, ModelInfo]) -> str | None:
    """The chat model if it is loaded (or the server does not say), else the first loaded task model."""
    configured = [provider.model_for(task) for task in ("chat", "rank", "extract", "sigma")]
    candidates = [m for m in dict.fromkeys(configured) if m]
    for model in candidates:
        info = index.get(model)
        if info is None or info.loaded is not False:
            return model
    return None


async def _check_completion(provider: Provider, report: ConnectionReport, model: str) -> None:
    request = ChatRequest(
        messages=[Message(role="user", content="Reply with the single word: ok")],
        model=model,
        max_tokens=1,
        temperature=0.0,
        task=Task.CHAT,
    )
    started = time.perf_counter()
    try:
        result = await provider.complete(request)
    except LLMError as error:
        report.add("completion", False, f"{model}: {error.message}", getattr(error, "fix", None))
        return
    report.add("completion", True, f"{result.model or model} answered in {time.perf_counter() - started:.2f}s")


async def _check_embeddings(provider: Provider, report: ConnectionReport, required: bool) -> None:
    started = time.perf_counter()
    try:
        embedding = await provider.embed(["connection test"])
    except Unsupported:
        report.add("embeddings", True, "not offered by this provider", level="info")
        return
    except LLMError as error:
        fix = " ".join(part for part in (getattr(error, "fix", None), provider.fix_for("embeddings")) if part)
        report.add("embeddings", False, error.message, fix or None, level="error" if required else "warning")
        return
    elapsed = time.perf_counter() - started
    report.add("embeddings", True, f"{embedding.model}: {embedding.dimensions} dimensions in {elapsed:.2f}s")


async def _check_model(
    provider: Provider, report: ConnectionReport, model: str, tasks: list[str], info: ModelInfo | None, listed: bool
) -> None:
    label = f"model {model} ({', '.join(tasks)})"
    if listed and info is None:
        report.add(
            f"{label}: present",
            False,
            f"{model} is not in the server's model list",
            "Model not found: verify the name matches exactly what `ctistudio llm models` lists.",
        )
        return
    if info is not None and info.loaded is False:
        report.add(
            f"{label}: loaded",
            False,
            f"{model} is downloaded but not loaded (JIT loading would load it at default settings)",
            provider.context_fix(model, max(TASK_CONTEXT_NEEDS[t][1] for t in tasks)),
        )
        return
    window = info.context_length if info else None
    if window is None:
        try:
            window = await provider.context_length(model)
        except LLMError:
            window = None
    minimum = max(TASK_CONTEXT_NEEDS[t][0] for t in tasks)
    recommended = max(TASK_CONTEXT_NEEDS[t][1] for t in tasks)
    if window is None:
        report.add(
            f"{label}: context",
            False,
            "the loaded context length is unknown",
            f"Set LMSTUDIO_CONTEXT_LENGTH_<model> or load it explicitly: {provider.context_fix(model, recommended)}",
            level="warning",
        )
    elif window < minimum:
        report.add(
            f"{label}: context",
            False,
            f"loaded with {window:,} tokens; {', '.join(tasks)} need at least {minimum:,} "
            f"({recommended:,} recommended)",
            provider.context_fix(model, recommended) + " The model must be reloaded for the change to apply.",
        )
    elif window < recommended:
        report.add(
            f"{label}: context",
            False,
            f"loaded with {window:,} tokens: enough ({minimum:,} minimum) but below the {recommended:,} recommended",
            provider.context_fix(model, recommended),
            level="warning",
        )
    else:
        report.add(f"{label}: context", True, f"loaded with {window:,} tokens (≥ {recommended:,} recommended)")
