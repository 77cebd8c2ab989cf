"""LM Studio: the OpenAI-compatible provider plus what only LM Studio's native REST API tells.

- Model state and the REAL loaded context length: ``GET /api/v1/models`` (0.4.0+,
  ``loaded_instances[].config.context_length``), else ``GET /api/v0/models`` (0.3.6+), else the
  ``LMSTUDIO_CONTEXT_LENGTH_<slug>`` / ``LMSTUDIO_MAX_CONTEXT`` overrides.
- Loading with a context length: ``POST /api/v1/models/load``, reusing a loaded instance whose window is
  large enough instead of stacking a second instance (``lms load`` as the fallback for older servers).
- Host fallback: configured URL → localhost → 127.0.0.1 → host.docker.internal, for connection failures.
- Permission keys: ``LMSTUDIO_API_KEY`` is sent as ``Authorization: Bearer``.
- Stateful chat: a request with ``stateful=True`` goes to ``POST /api/v1/chat`` (0.4+), which keeps the
  conversation server-side (``previous_response_id``); :meth:`LMStudioProvider.supports_threads` says
  whether this server has it (see :mod:`ctistudio.llm.providers.lmstudio_chat`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from ctistudio.llm.errors import AuthenticationFailed, BadOutput, BadRequest, ModelNotLoaded, ProviderError
from ctistudio.llm.providers.lmstudio_chat import CHAT_PATH, native_body, native_result
from ctistudio.llm.providers.openai_compat import OpenAICompatibleProvider
from ctistudio.llm.types import ChatRequest, ChatResult, ModelInfo, StreamDelta

log = logging.getLogger(__name__)

FALLBACK_HOSTS = ["localhost", "127.0.0.1", "host.docker.internal"]
_UNEXPECTED_ENDPOINT = re.compile(r"unexpected endpoint or method", re.I)
EMBEDDING_FALLBACK_HOSTS = ["localhost", "host.docker.internal"]


class LoadResult(BaseModel):
    model: str
    instance_id: str
    context_length: int | None
    reused: bool
    load_time_seconds: float | None = None
    unloaded: list[str] = Field(default_factory=list)
    # smaller instances that could not be unloaded (instance → the server's reason); they stay loaded
    kept: dict[str, str] = Field(default_factory=dict)
    method: str = "rest"  # rest | lms


class _EndpointMissing(BadRequest):
    """The server has no such native endpoint (an LM Studio older than the API that defines it)."""


class LMStudioProvider(OpenAICompatibleProvider):
    name = "lmstudio"

    def __init__(self, base_url: str, *, max_context: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("fallback_hosts", FALLBACK_HOSTS)
        kwargs.setdefault("embedding_fallback_hosts", EMBEDDING_FALLBACK_HOSTS)
        super().__init__(base_url, **kwargs)
        self.max_context = max_context
        self._threads: bool | None = None  # whether /api/v1/chat exists (probed once)

    def context_fix(self, model: str, size: int) -> str:
        return (
            f"Load the model with a larger window: `ctistudio llm load {model} --context-length {size}` "
            f"(or `lms load {model} --context-length {size}`, or the Context tab in LM Studio, then reload)."
        )

    def fix_for(self, kind: str) -> str | None:
        # The seed's troubleshooting table, one line each.
        url = self.transport.candidates[0]
        return {
            "connect": (
                f"Ensure LM Studio's server is running and reachable at {url} (Developer tab → Start server, "
                "or `lms server start`; enable 'Serve on local network' for another machine) and that "
                "LMSTUDIO_API_URL is right."
            ),
            "timeout": (
                "LM Studio took too long (long prompt prefill on a small machine?): raise LMSTUDIO_TIMEOUT "
                "(LM Studio's own; CTISTUDIO_TIMEOUT for every provider) or use a smaller model."
            ),
            "auth": (
                "LM Studio requires a permission key: create one in LM Studio (Settings → Server) and set "
                "LMSTUDIO_API_KEY."
            ),
            "model": (
                "Verify the model name matches exactly what LM Studio lists (`ctistudio llm models`), and "
                "load it (`ctistudio llm load MODEL`)."
            ),
            "context": (
                "Increase the context length: `ctistudio llm load MODEL --context-length 16384` "
                "(article scoring needs 8,192 minimum, 16,384–32,768 recommended); the model must be reloaded."
            ),
            "rate": "LM Studio is busy: lower parallel requests or raise Max Concurrent Predictions.",
            "server": "LM Studio failed while answering (model crashed?): check LM Studio's log and reload the model.",
            "embeddings": "Check LMSTUDIO_EMBEDDING_URL and LMSTUDIO_EMBEDDING_MODEL, and load an embedding model.",
        }.get(kind)

    # -- stateful chat (/api/v1/chat) ---------------------------------------------------------------------
    async def supports_threads(self) -> bool:
        """Whether this server keeps conversations (LM Studio 0.4+, which has the v1 REST API)."""
        if self._threads is None:
            try:
                await self._native("GET", "/api/v1/models")
                self._threads = True
            except _EndpointMissing:
                self._threads = False
            except ProviderError as error:  # not answering now: ask again next time
                log.debug("lmstudio: cannot tell whether /api/v1/chat exists (%s)", error)
                return False
        return self._threads

    async def complete(self, request: ChatRequest) -> ChatResult:
        if not request.stateful:
            return await super().complete(request)
        started = time.perf_counter()
        response = await self.transport.request(
            "POST", CHAT_PATH, json_body=native_body(request, stream=False), timeout=request.timeout
        )
        data = self._native_answer(response.json() if response.content else {}, str(response.url))
        return native_result(
            data,
            provider=self.name,
            model=request.model or "",
            url=str(response.url),
            elapsed=time.perf_counter() - started,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        if not request.stateful:
            async for delta in super().stream(request):
                yield delta
            return
        started = time.perf_counter()
        url = self.transport.url_for(CHAT_PATH)
        final: dict[str, Any] | None = None
        events = self.transport.stream_events(CHAT_PATH, native_body(request, stream=True), timeout=request.timeout)
        async with contextlib.aclosing(events) as stream:
            async for event in stream:
                kind = event.get("type")
                if kind == "message.delta" and event.get("content"):
                    yield StreamDelta(text=str(event["content"]))
                elif kind == "error":
                    raise self.transport.error_from_event(event, url)
                elif kind == "chat.end":
                    final = self._native_answer(event.get("result") or {}, url)
        if final is None:
            raise BadOutput(f"{self.name}: the /api/v1/chat stream ended without its chat.end event", raw="")
        yield StreamDelta(
            done=True,
            result=native_result(
                final, provider=self.name, model=request.model or "", url=url, elapsed=time.perf_counter() - started
            ),
        )

    def _native_answer(self, data: Any, url: str) -> dict[str, Any]:
        if not isinstance(data, dict) or "output" not in data:
            if isinstance(data, dict) and _UNEXPECTED_ENDPOINT.search(str(data.get("error"))):
                self._threads = False
            if isinstance(data, dict) and "error" in data:
                raise self.transport.error_from_event(data, url)
            raise BadOutput(f"{self.name}: unexpected /api/v1/chat answer: {str(data)[:300]}", raw=str(data)[:2000])
        return data

    # -- model state -----------------------------------------------------------------------------------
    async def _native(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call a native REST endpoint. A server too old to have it answers HTTP 200 with
        ``{"error": "Unexpected endpoint or method. (GET /api/v1/models)"}``: that becomes a 404 BadRequest."""
        response = await self.transport.request(method, path, json_body=body, timeout=10 if method == "GET" else None)
        try:
            data = response.json() if response.content else {}
        except ValueError as exc:
            raise BadRequest(
                f"LM Studio answered {path} with something that is not JSON: {response.text[:200]}",
                provider=self.name,
                url=str(response.url),
                status_code=response.status_code,
            ) from exc
        if isinstance(data, dict) and "error" in data and _UNEXPECTED_ENDPOINT.search(str(data["error"])):
            raise _EndpointMissing(
                f"this LM Studio has no {method} {path} (an older version)",
                provider=self.name,
                url=str(response.url),
                status_code=404,
                body=response.text[:500],
            )
        if not isinstance(data, dict):
            raise BadRequest(f"LM Studio answered {path} unexpectedly: {response.text[:200]}", provider=self.name)
        return data

    async def models(self) -> list[ModelInfo]:
        """Models with loaded state and loaded context: /api/v1/models, else /api/v0/models, else /v1/models."""
        try:
            return self._from_v1(await self._native("GET", "/api/v1/models"))
        except (BadRequest, ModelNotLoaded) as error:
            log.debug("lmstudio: /api/v1/models unavailable (%s); trying /api/v0/models", error)
        try:
            return self._from_v0(await self._native("GET", "/api/v0/models"))
        except (BadRequest, ModelNotLoaded) as error:
            log.debug("lmstudio: /api/v0/models unavailable (%s); using /v1/models", error)
        return await super().models()

    def _from_v1(self, data: dict[str, Any]) -> list[ModelInfo]:
        out = []
        for item in data.get("models") or []:
            instances = item.get("loaded_instances") or []
            windows = {i.get("id", ""): (i.get("config") or {}).get("context_length") for i in instances}
            known = {k: v for k, v in windows.items() if isinstance(v, int)}
            quant = item.get("quantization") or {}
            out.append(
                ModelInfo(
                    id=item.get("key", ""),
                    provider=self.name,
                    loaded=bool(instances),
                    context_length=max(known.values()) if known else None,
                    max_context_length=item.get("max_context_length"),
                    type=item.get("type"),
                    quantization=quant.get("name") if isinstance(quant, dict) else quant,
                    format=item.get("format"),
                    size_bytes=item.get("size_bytes"),
                    instances=list(windows),
                    instance_context_lengths=known,
                )
            )
        return out

    def _from_v0(self, data: dict[str, Any]) -> list[ModelInfo]:
        out = []
        for item in data.get("data") or []:
            loaded = item.get("state") == "loaded"
            window = item.get("loaded_context_length") if loaded else None
            kind = item.get("type")
            out.append(
                ModelInfo(
                    id=item.get("id", ""),
                    provider=self.name,
                    loaded=loaded,
                    context_length=window,
                    max_context_length=item.get("max_context_length"),
                    type="embedding" if kind == "embeddings" else kind,
                    quantization=item.get("quantization"),
                    format=item.get("compatibility_type"),
                    instances=[item.get("id", "")] if loaded else [],
                    instance_context_lengths={item.get("id", ""): window} if loaded and window else {},
                )
            )
        return out

    async def context_length(self, model: str) -> int | None:
        """Loaded window from the server; else LMSTUDIO_CONTEXT_LENGTH_<slug>; else LMSTUDIO_MAX_CONTEXT."""
        try:
            for info in await self.models():
                if model in info.instance_context_lengths:
                    return info.instance_context_lengths[model]
                if info.id == model and info.context_length:
                    return info.context_length
        except ProviderError as error:
            if isinstance(error, AuthenticationFailed):
                raise
            log.debug("lmstudio: cannot read model state (%s)", error)
        return self.context_override(model) or self.max_context

    # -- loading ---------------------------------------------------------------------------------------
    async def load(self, model: str, context_length: int | None = None, *, ttl: int | None = None) -> LoadResult:
        """Load ``model`` with at least ``context_length`` tokens, reusing a loaded instance that has enough.

        Loading a loaded model again would stack a second instance (``<key>:2``) at default settings, so an
        instance that is big enough is reused, and smaller instances are unloaded before loading anew.
        """
        infos = {i.id: i for i in await self.models()}
        info = infos.get(model)
        if info is None and infos:
            known = ", ".join(sorted(infos)[:10])
            raise ModelNotLoaded(
                f"LM Studio has no model {model!r} (it has: {known})",
                provider=self.name,
                model=model,
                fix=f"Download it in LM Studio (`lms get {model}`) or use one of the listed keys.",
            )
        most = info.max_context_length if info is not None else None
        if context_length and most and context_length > most:
            raise BadRequest(
                f"{model} supports at most {most:,} tokens of context; {context_length:,} were asked",
                provider=self.name,
                fix=f"Use `ctistudio llm load {model} --context-length {most}` or a model with a larger window.",
            )
        if info is not None and info.loaded:
            best = max(info.instance_context_lengths.items(), key=lambda kv: kv[1], default=None)
            if best is not None and (context_length is None or best[1] >= context_length):
                return LoadResult(model=model, instance_id=best[0], context_length=best[1], reused=True)
            if best is None and context_length is None:
                instance = info.instances[0] if info.instances else model
                return LoadResult(model=model, instance_id=instance, context_length=info.context_length, reused=True)
        too_small = list(info.instances) if info is not None and info.loaded else []
        body: dict[str, Any] = {"model": model}
        if context_length:
            body["config"] = {"context_length": context_length}
        unloaded, kept = await self._unload_all(too_small)
        try:
            data = await self._native("POST", "/api/v1/models/load", body)
        except _EndpointMissing:  # no v1 REST API at all: an LM Studio older than 0.4
            return await self._load_with_lms(model, context_length, ttl, unloaded, kept)
        config = data.get("config") or {}
        return LoadResult(
            model=model,
            instance_id=data.get("model_instance_id") or model,
            context_length=config.get("context_length", context_length),
            reused=False,
            load_time_seconds=data.get("load_time_seconds"),
            unloaded=unloaded,
            kept=kept,
        )

    async def _unload_all(self, instances: list[str]) -> tuple[list[str], dict[str, str]]:
        """Unload ``instances`` (REST, else ``lms unload``); returns (unloaded, kept → why it stayed).

        An instance that cannot be unloaded is not fatal: loading again then stacks a second instance with
        the asked-for window next to it (what `lms load` does), and the result says which one to use.
        """
        unloaded: list[str] = []
        kept: dict[str, str] = {}
        lms = shutil.which("lms")
        for instance in instances:
            try:
                await self._native("POST", "/api/v1/models/unload", {"instance_id": instance})
                unloaded.append(instance)
                continue
            except _EndpointMissing:
                kept[instance] = "this LM Studio has no POST /api/v1/models/unload"
            except BadRequest as error:
                kept[instance] = f"POST /api/v1/models/unload answered {error.status_code}: {error.message}"
            if lms is not None:
                try:
                    await self._run_lms([lms, "unload", instance])
                except BadRequest as error:
                    kept[instance] += f"; `lms unload` failed too: {error.message}"
                    continue
                unloaded.append(instance)
                del kept[instance]
        for instance, reason in kept.items():
            log.warning("lmstudio: could not unload %s (%s); loading a second instance next to it", instance, reason)
        return unloaded, kept

    async def _load_with_lms(
        self, model: str, context_length: int | None, ttl: int | None, unloaded: list[str], kept: dict[str, str]
    ) -> LoadResult:
        """Older LM Studio without the v1 REST API: use the ``lms`` CLI when it is installed (the smaller
        instances were already unloaded with it by :meth:`_unload_all`)."""
        lms = shutil.which("lms")
        if lms is None:
            raise BadRequest(
                "this LM Studio has no /api/v1/models/load (older than 0.4.0) and the `lms` CLI is not installed",
                provider=self.name,
                fix=f"Update LM Studio, or run `lms load {model} --context-length {context_length or 16384}` "
                "where LM Studio runs, or set the Context Length in LM Studio's UI and reload.",
            )
        args = [lms, "load", model, "--yes"]
        if context_length:
            args += ["--context-length", str(context_length)]
        if ttl:
            args += ["--ttl", str(ttl)]
        await self._run_lms(args)
        return LoadResult(
            model=model,
            instance_id=model,
            context_length=context_length,
            reused=False,
            unloaded=unloaded,
            kept=kept,
            method="lms",
        )

    async def _run_lms(self, args: list[str]) -> None:
        process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            message = (err or out).decode(errors="replace").strip()[:500]
            raise BadRequest(f"`lms {args[1]}` failed: {message}", provider=self.name)
