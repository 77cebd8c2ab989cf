"""Which provider × model pairs a benchmark measures, and which it cannot (with the reason and the fix).

- Default providers: the local ones (MLX, llama.cpp, LM Studio, Ollama, any OpenAI-compatible URL, the
  embedded engine) that settings enable; each local provider that is not enabled is listed as unavailable
  with the variable that enables it. Cloud providers are measured only when named with ``--provider``
  (they cost money), and never in place of a local one.
- Models: ``--model M`` measures M on every provider asked for, ``--model P=M`` on provider P only.
  Without ``--model`` each task runs on the model the configuration gives it (``LMSTUDIO_MODEL_RANK`` …).
  In-process engines serve the model their settings name, so for them a model means a setting:
  ``embedded`` → ``CTISTUDIO_EMBEDDED_MODEL``, ``mlx`` → ``MLX_MODEL_PATH``, ``llamacpp`` →
  ``LLAMACPP_MODEL_PATH`` (a GGUF file or catalog name; a plain name goes to the llama.cpp server).
- A target is available when its provider builds, reports healthy, and (when it lists models) has the
  model. Nothing is measured in place of an unavailable target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctistudio.bench.models import BenchTaskName, Unavailable
from ctistudio.config import Settings
from ctistudio.errors import ConfigurationError, CtiStudioError
from ctistudio.llm import Gateway
from ctistudio.llm.providers import SPECS, provider_names, spec_for


@dataclass
class Target:
    """One provider × model to measure, on ``tasks``, with a gateway built from ``settings``."""

    provider: str
    model: str  # the label in the report ("default" until the first answer names the model)
    tasks: list[BenchTaskName]
    settings: Settings
    request_model: str | None = None  # sent with each request (None: the provider's own for the task)
    url: str | None = None  # the URL that answered (filled by the first answer)
    gateway: Gateway | None = field(default=None, repr=False)


def parse_models(models: list[str], providers: list[str]) -> dict[str, list[str]]:
    """``["m", "embedded=x"]`` → models per provider (plain names apply to every provider)."""
    out: dict[str, list[str]] = {name: [] for name in providers}
    for item in models:
        scope, sep, model = item.partition("=")
        if sep and scope in out:
            out[scope].append(model)
        elif sep and scope in provider_names():
            raise ConfigurationError(
                f"--model {item}: provider {scope} is not among the providers benchmarked",
                fix=f"Add --provider {scope}, or drop the {scope}= prefix.",
            )
        else:
            for name in out:
                out[name].append(item)
    return {name: list(dict.fromkeys(found)) for name, found in out.items()}


def choose_providers(settings: Settings, requested: list[str]) -> tuple[list[str], list[Unavailable]]:
    """The providers to try, and the default ones skipped because settings do not enable them."""
    known = provider_names()
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise ConfigurationError(
            f"unknown provider(s): {', '.join(unknown)}", fix=f"Use --provider with one of: {', '.join(known)}."
        )
    if requested:
        return list(dict.fromkeys(requested)), []
    chosen, skipped = [], []
    for spec in SPECS:
        if spec.cloud:
            skipped.append(
                Unavailable(
                    provider=spec.name,
                    reason="cloud provider: measured only when named (each call costs money)",
                    fix=f"Pass --provider {spec.name} (with {spec.enable_hint} set) to measure it.",
                )
            )
        elif spec.enabled(settings):
            chosen.append(spec.name)
        else:
            skipped.append(
                Unavailable(
                    provider=spec.name,
                    reason="not enabled",
                    fix=f"Set {spec.enable_hint}, or pass --provider {spec.name} to try it anyway.",
                )
            )
    return chosen, skipped


def bind_model(provider: str, model: str, settings: Settings) -> tuple[Settings, str | None]:
    """Settings for measuring ``model`` on ``provider``, and the model to send with each request."""
    spec = spec_for(provider)
    if spec.model_setting and spec.binds_model(model, settings):
        return settings.model_copy(update={spec.model_setting: model}), None
    return settings, model


def plan_targets(
    gateway: Gateway, providers: list[str], models: dict[str, list[str]], tasks: list[BenchTaskName]
) -> tuple[list[Target], list[Unavailable]]:
    """Targets for every provider × model (or × configured task model); providers that do not build are
    unavailable."""
    settings = gateway.settings
    targets: list[Target] = []
    unavailable: list[Unavailable] = []
    for name in providers:
        spec = spec_for(name)
        if spec.cloud and not spec.enabled(settings):
            hint = spec.enable_hint
            unavailable.append(Unavailable(provider=name, reason=f"{hint} is not set", fix=f"Set {hint}."))
            continue
        if models.get(name):
            for model in models[name]:
                bound, request_model = bind_model(name, model, settings)
                targets.append(Target(name, model, list(tasks), bound, request_model))
            continue
        try:
            provider = gateway.provider(name)
        except CtiStudioError as error:
            unavailable.append(Unavailable(provider=name, reason=error.message, fix=error.fix))
            continue
        by_model: dict[str, list[BenchTaskName]] = {}
        for task in tasks:
            by_model.setdefault(provider.model_for(task) or "", []).append(task)
        for model, model_tasks in by_model.items():
            request_model = model or None
            if spec.model_setting and spec.in_process(settings):
                request_model = None  # in-process engines serve the model their settings name
            targets.append(Target(name, model or "default", model_tasks, settings, request_model))
    return targets, unavailable


def is_in_process(gateway: Gateway, provider: str) -> bool:
    """Whether the engine runs in this process (its memory is this process's memory)."""
    return gateway.provider(provider).in_process


async def check_available(target: Target) -> Unavailable | None:
    """``None`` when the target can be measured; otherwise why not (built, healthy, model present)."""
    gateway = target.gateway or Gateway(target.settings)
    target.gateway = gateway
    try:
        provider = gateway.provider(target.provider)
        health = await provider.health()
    except CtiStudioError as error:
        return Unavailable(provider=target.provider, model=target.model, reason=error.message, fix=error.fix)
    if not health.ok:
        return Unavailable(provider=target.provider, model=target.model, reason=health.detail or "not healthy")
    if target.request_model:
        try:
            listed = [info.id for info in await provider.models() if info.type in (None, "llm", "vlm")]
        except CtiStudioError:
            listed = []  # a server that cannot list models may still answer; the calls will tell
        if listed and target.request_model not in listed:
            shown = ", ".join(listed[:8]) + (" …" if len(listed) > 8 else "")
            return Unavailable(
                provider=target.provider,
                model=target.model,
                reason=f"model {target.request_model!r} is not on the server (it has: {shown})",
                fix=f"Use one of its models with --model {target.provider}=NAME, or download/load it first.",
            )
    return None
