"""A llama.cpp server: llama.cpp's own ``llama-server`` or llama-cpp-python's ``python -m llama_cpp.server``.

Both speak the OpenAI wire format (shared transport); what differs is handled here:

| | llama-server | llama_cpp.server |
|---|---|---|
| readiness | ``GET /health`` (503 while loading) | none: ``GET /v1/models`` |
| per-request context | ``GET /props`` → ``default_generation_settings.n_ctx`` (per slot) | not reported |
| exact token counts | ``POST /tokenize {"content"}`` | ``POST /extras/tokenize {"input"}`` |
| concurrency | ``total_slots`` in ``/props`` | one at a time |
| structured output | ``response_format: json_schema`` | ``{"type": "json_object", "schema"}`` |
| repetition | DRY sampling on structured requests | not sent |
| JSON layout | a compact ``grammar`` built from the schema (:mod:`ctistudio.llm.grammar`) | the schema |
| shared prefixes | copied between slots (``/slots/{id}?action=save/restore``, needs ``--slot-save-path``) | none |

The flavour is detected once, from whether ``/props`` exists. Requests in flight are capped at the
server's slot count, so fanning out never queues more work than the server runs in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

from ctistudio.llm.errors import BadRequest, LLMError, ProviderError, ServerError
from ctistudio.llm.grammar import compact_grammar
from ctistudio.llm.provider import estimate_tokens
from ctistudio.llm.providers.openai_compat import OpenAICompatibleProvider
from ctistudio.llm.types import ChatRequest, ChatResult, Health, ModelInfo, StreamDelta

log = logging.getLogger(__name__)

Flavor = Literal["llama-server", "llama-cpp-python"]

# DRY ("don't repeat yourself") sampling for structured answers on llama-server. Under a grammar a small model
# fills every array to its maxItems with copies of the item it just wrote (the demo's registry rule: the same
# selection three times); DRY penalises the token that would extend a sequence already written, so at each
# free choice (which observable, which value, close the array) the copy loses. The grammar still forces the
# JSON structure, so the repeated keys cost nothing. Sequence breakers are llama.cpp's newline, colon and quote
# by default, which would cut every JSON repeat short: only the end-of-turn token breaks one here. The window
# covers the answer and the end of the prompt, not the values listed earlier in it.
DRY_SAMPLING: dict[str, Any] = {
    "dry_multiplier": 0.8,
    "dry_base": 1.75,
    "dry_allowed_length": 3,
    "dry_penalty_last_n": 400,
    "dry_sequence_breakers": ["<|im_end|>"],
}
SHARED_PREFIX_FILE = "ctistudio-shared-prefix.bin"  # slot state written under the server's --slot-save-path


def v1_url(server_url: str) -> str:
    """``http://host:8080`` → ``http://host:8080/v1`` (unchanged when it already ends with /v1)."""
    url = server_url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class LlamaCppServerProvider(OpenAICompatibleProvider):
    """Talks to a running llama.cpp server at ``LLAMACPP_SERVER_URL``."""

    name = "llamacpp"

    def __init__(self, server_url: str, **kwargs: Any) -> None:
        super().__init__(v1_url(server_url), **kwargs)
        self.flavor: Flavor | None = None
        self.props: dict[str, Any] = {}
        self.served_model: str | None = None
        self._slot_limits: dict[int, tuple[int, asyncio.Semaphore]] = {}
        self._slot_copy: bool | None = None  # whether the server saves and restores slots (None: not tried yet)
        self.in_flight = 0
        self.peak_in_flight = 0

    def context_fix(self, model: str, size: int) -> str:
        return (
            f"Restart llama-server with {size:,} tokens per request: `--ctx-size {size} --parallel 1`, or "
            f"`--ctx-size {size * 4} --parallel 4` (each slot gets ctx-size / parallel unless --kv-unified)."
        )

    def fix_for(self, kind: str) -> str | None:
        url = self.transport.candidates[0]
        return {
            "connect": (
                f"Start the llama.cpp server (`llama-server -m MODEL.gguf --port 8080`) or point "
                f"LLAMACPP_SERVER_URL at it (tried {url})."
            ),
            "timeout": "The llama.cpp server is slow (long prompt on CPU?): raise CTISTUDIO_TIMEOUT "
            "or use a smaller model.",
            "model": "The llama.cpp server serves one model: check the -m/--model it was started with.",
            "context": (
                "Restart the llama.cpp server with a larger --ctx-size (each request gets ctx-size / --parallel "
                "unless --kv-unified)."
            ),
            "rate": "The llama.cpp server is busy: lower parallel requests or start it with more --parallel slots.",
            "server": "The llama.cpp server failed while answering; check its log.",
        }.get(kind)

    # -- discovery -----------------------------------------------------------------------------------
    async def detect(self) -> Flavor:
        """Which server this is (``/props`` exists only on llama-server); remembered after the first answer."""
        if self.flavor is None:
            try:
                response = await self.transport.request("GET", "/props", timeout=10)
                self.props = response.json()
                self.flavor = "llama-server"
            except BadRequest:  # 404: llama-cpp-python's server has no /props
                self.flavor = "llama-cpp-python"
        return self.flavor

    async def slot_count(self) -> int:
        if await self.detect() == "llama-server":
            return int(self.props.get("total_slots") or 1)
        return 1

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the server's slots for a request (at most ``slot_count()`` requests run at once)."""
        loop_id = id(asyncio.get_running_loop())
        entry = self._slot_limits.get(loop_id)
        if entry is None:
            limit = await self.slot_count()
            entry = (limit, asyncio.Semaphore(limit))
            self._slot_limits = {loop_id: entry}
        async with entry[1]:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1

    # -- wire format ---------------------------------------------------------------------------------
    def response_format(self, request: ChatRequest) -> dict[str, Any] | None:
        if request.response_schema is not None and self.flavor == "llama-cpp-python":
            return {"type": "json_object", "schema": request.response_schema}
        return super().response_format(request)

    def build_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = super().build_body(request, stream=stream)
        if not body.get("model"):
            body["model"] = self.served_model or "default"
        if self.flavor == "llama-cpp-python":
            body.pop("stream_options", None)
        elif request.response_schema is not None:
            body.update(DRY_SAMPLING)
            grammar = compact_grammar(request.response_schema)
            if grammar is not None:  # else the schema goes as response_format (llama-server's own grammar)
                body.pop("response_format", None)
                body["grammar"] = grammar
        return body

    # -- chat --------------------------------------------------------------------------------------
    async def complete(self, request: ChatRequest) -> ChatResult:
        await self.detect()
        async with self.slot():
            return await super().complete(request)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        await self.detect()
        async with self.slot():
            async for delta in super().stream(request):
                yield delta

    # -- shared prefixes ------------------------------------------------------------------------------
    async def share_prefix(self, request: ChatRequest) -> bool:
        """Evaluate ``request``'s messages on slot 0 (one generated token), save that slot's state and restore
        it into the other slots. A slot's cache serves only that slot: the extraction agents, sent together
        with the same 1,800-token article, had each slot evaluate it side by side (45 and 62 s on 2 cores),
        where one evaluation takes 15 s and the copy 10 ms. Needs a server with a slot save path
        (``llama-server --slot-save-path DIR``; the embedded engine has one); without it, nothing is tried
        again. The state file has one fixed name, so it never accumulates: a concurrent caller overwriting it
        can only cost a cache miss, since a restored slot carries its own tokens."""
        if self._slot_copy is False or await self.detect() != "llama-server":
            return False
        slots = await self.slot_count()
        if slots < 2:
            return False
        body = self.build_body(request.model_copy(update={"max_tokens": 1, "response_schema": None}), stream=False)
        body["id_slot"] = 0
        state = {"filename": SHARED_PREFIX_FILE}
        async with self.slot():
            try:
                await self.transport.request("POST", self.chat_path(), json_body=body, timeout=request.timeout)
            except LLMError as error:  # too long for a slot, server busy …: the requests evaluate it themselves
                log.info("%s: prefix not shared (%s)", self.name, error.message)
                return False
            try:
                await self.transport.request("POST", "/slots/0?action=save", json_body=state, timeout=60)
                for slot in range(1, slots):
                    await self.transport.request("POST", f"/slots/{slot}?action=restore", json_body=state, timeout=60)
            except ProviderError as error:
                if error.status_code in (404, 501):  # no --slot-save-path, or no slots endpoint: never again
                    self._slot_copy = False
                log.info("%s: slots keep separate caches (%s)", self.name, error.message)
                return False
        self._slot_copy = True
        return True

    # -- facts -------------------------------------------------------------------------------------
    async def models(self) -> list[ModelInfo]:
        infos = await super().models()
        for info in infos:
            info.loaded = True
            info.format = "gguf"
        if infos and not self.served_model:
            self.served_model = infos[0].id
        return infos

    async def context_length(self, model: str) -> int | None:
        """The per-request window: ``/props`` per-slot n_ctx, else /v1/models meta, else the override."""
        override = self.context_override(model)
        if override:
            return override
        if await self.detect() == "llama-server":
            settings = self.props.get("default_generation_settings") or {}
            per_slot = settings.get("n_ctx") or self.props.get("n_ctx")
            if per_slot:
                return int(per_slot)
        for info in await self.models():
            if info.context_length:
                return info.context_length
        return None

    async def count_tokens(self, text: str, model: str | None = None) -> int:
        """Exact count from the server's tokenizer (falls back to the estimate if it cannot tokenize)."""
        try:
            if await self.detect() == "llama-server":
                response = await self.transport.request("POST", "/tokenize", json_body={"content": text}, timeout=30)
            else:
                body = {"input": text, "model": model or self.served_model or "default"}
                response = await self.transport.request("POST", "/extras/tokenize", json_body=body, timeout=30)
            tokens = response.json().get("tokens")
            if isinstance(tokens, list):
                return len(tokens)
        except (BadRequest, ValueError) as error:
            log.debug("%s: tokenize failed (%s); estimating", self.name, error)
        return estimate_tokens(text)

    async def health(self) -> Health:
        url = self.transport.candidates[0]
        try:
            if await self.detect() == "llama-server":
                await self.transport.request("GET", "/health", timeout=5)
            else:
                await self.models()
        except ServerError as error:
            if error.status_code == 503:
                return Health(provider=self.name, ok=False, detail="the llama.cpp server is loading the model", url=url)
            return Health(provider=self.name, ok=False, detail=str(error), url=url)
        except LLMError as error:
            return Health(provider=self.name, ok=False, detail=str(error), url=url)
        return Health(provider=self.name, ok=True, detail=f"ready ({self.flavor})", url=url)
