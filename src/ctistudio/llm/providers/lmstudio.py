"""LM Studio: the OpenAI-compatible provider plus what only LM Studio's native REST API tells.

- Model state and the REAL loaded context length: ``GET /api/v1/models`` (0.4.0+,
  ``loaded_instances[].config.context_length``), else ``GET /api/v0/models`` (0.3.6+), else the
  ``LMSTUDIO_CONTEXT_LENGTH_<slug>`` / ``LMSTUDIO_MAX_CONTEXT`` overrides.
- Loading with a context length: ``POST /api/v1/models/load``, reusing a loaded instance whose window is
  large enough instead of stacking a second instance (``lms load`` as the fallback for older servers).
- Host fallback: configured URL → localhost → 127.0.0.1 → host.docker.internal, for connection failures.
- Permission keys: ``LMSTUDIO_API_KEY`` is sent as ``Authorization: Bearer``.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import Any

from pydantic import BaseModel

from ctistudio.llm.errors import BadRequest, ModelNotLoaded, ProviderError
from ctistudio.llm.providers.openai_compat import OpenAICompatibleProvider
from ctistudio.llm.types import ModelInfo

log = logging.getLogger(__name__)

FALLBACK_HOSTS = ["localhost", "127.0.0.1", "host.docker.internal"]
EMBEDDING_FALLBACK_HOSTS = ["localhost", "host.docker.internal"]


class LoadResult(BaseModel):
    model: str
    instance_id: str
    context_length: int | None
    reused: bool
    load_time_seconds: float | None = None
    unloaded: list[str] = []
    method: str = "rest"  # rest | lms


class LMStudioProvider(OpenAICompatibleProvider):
    name = "lmstudio"

    def __init__(self, base_url: str, *, max_context: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("fallback_hosts", FALLBACK_HOSTS)
        kwargs.setdefault("embedding_fallback_hosts", EMBEDDING_FALLBACK_HOSTS)
        super().__init__(base_url, **kwargs)
        self.max_context = max_context

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
                "or use a smaller model."
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
        }.get(kind)

    # -- model state -----------------------------------------------------------------------------------
    async def _native(self, path: str) -> Any:
        response = await self.transport.request("GET", path, timeout=10)
        return response.json()

    async def models(self) -> list[ModelInfo]:
        try:
            return self._from_v1(await self._native("/api/v1/models"))
        except (BadRequest, ModelNotLoaded) as error:
            log.debug("lmstudio: /api/v1/models unavailable (%s); trying /api/v0/models", error)
        try:
            return self._from_v0(await self._native("/api/v0/models"))
        except (BadRequest, ModelNotLoaded) as error:
            log.debug("lmstudio: /api/v0/models unavailable (%s); using /v1/models", error)
        return await super().models()

    def _from_v1(self, data: dict[str, Any]) -> list[ModelInfo]:
        out = []
        for item in data.get("models") or []:
            instances = item.get("loaded_instances") or []
            windows = [(i.get("config") or {}).get("context_length") for i in instances]
            windows = [w for w in windows if w]
            quant = item.get("quantization") or {}
            out.append(
                ModelInfo(
                    id=item.get("key", ""),
                    provider=self.name,
                    loaded=bool(instances),
                    context_length=max(windows) if windows else None,
                    max_context_length=item.get("max_context_length"),
                    type=item.get("type"),
                    quantization=quant.get("name") if isinstance(quant, dict) else quant,
                    format=item.get("format"),
                    size_bytes=item.get("size_bytes"),
                    instances=[i.get("id", "") for i in instances],
                )
            )
        return out

    def _from_v0(self, data: dict[str, Any]) -> list[ModelInfo]:
        out = []
        for item in data.get("data") or []:
            loaded = item.get("state") == "loaded"
            out.append(
                ModelInfo(
                    id=item.get("id", ""),
                    provider=self.name,
                    loaded=loaded,
                    context_length=item.get("loaded_context_length") if loaded else None,
                    max_context_length=item.get("max_context_length"),
                    type=item.get("type"),
                    quantization=item.get("quantization"),
                    format=item.get("compatibility_type"),
                    instances=[item.get("id", "")] if loaded else [],
                )
            )
        return out

    async def context_length(self, model: str) -> int | None:
        """Loaded window from the server; else LMSTUDIO_CONTEXT_LENGTH_<slug>; else LMSTUDIO_MAX_CONTEXT."""
        try:
            for info in await self.models():
                if (info.id == model or model in info.instances) and info.context_length:
                    return info.context_length
        except ProviderError as error:
            log.debug("lmstudio: cannot read model state (%s)", error)
        return self.context_override(model) or self.max_context

    # -- loading ---------------------------------------------------------------------------------------
    async def load(self, model: str, context_length: int | None = None, *, ttl: int | None = None) -> LoadResult:
        """Load ``model`` with at least ``context_length`` tokens, reusing a loaded instance that has enough."""
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
        if info and info.loaded and (context_length is None or (info.context_length or 0) >= context_length):
            return LoadResult(
                model=model,
                instance_id=info.instances[0] if info.instances else model,
                context_length=info.context_length,
                reused=True,
            )
        unloaded: list[str] = []
        if info and info.loaded:
            # Loading again would stack a second instance ("<key>:2") at default settings: unload first.
            for instance in info.instances:
                await self._post_native("/api/v1/models/unload", {"instance_id": instance})
                unloaded.append(instance)
        body: dict[str, Any] = {"model": model}
        if context_length:
            body["config"] = {"context_length": context_length}
        try:
            data = await self._post_native("/api/v1/models/load", body)
        except BadRequest as error:
            if error.status_code == 404:
                return await self._load_with_lms(model, context_length, ttl, unloaded)
            raise
        config = data.get("config") or {}
        return LoadResult(
            model=model,
            instance_id=data.get("model_instance_id") or model,
            context_length=config.get("context_length", context_length),
            reused=False,
            load_time_seconds=data.get("load_time_seconds"),
            unloaded=unloaded,
        )

    async def _post_native(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.transport.request("POST", path, json_body=body)
        return response.json() if response.content else {}

    async def _load_with_lms(
        self, model: str, context_length: int | None, ttl: int | None, unloaded: list[str]
    ) -> LoadResult:
        """Older LM Studio without the v1 REST API: use the ``lms`` CLI when it is installed."""
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
        process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise BadRequest(
                f"`lms load` failed: {(err or out).decode(errors='replace').strip()[:500]}", provider=self.name
            )
        return LoadResult(
            model=model,
            instance_id=model,
            context_length=context_length,
            reused=False,
            unloaded=unloaded,
            method="lms",
        )
