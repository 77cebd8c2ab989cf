"""A test double of Ollama: a REAL HTTP server on 127.0.0.1 speaking Ollama's native API.

    from ctistudio.testing.ollama_double import OllamaDouble

    with OllamaDouble(models={"qwen2.5-coder:1.5b": 32768}) as ollama:
        ollama.root_url                  # "http://127.0.0.1:PORT" -> OLLAMA_URL
        ollama.reply('{"score": 7}')     # the next chat answer (same queue/responder as the other doubles)
        ollama.requests_to("/api/chat")[-1].body["options"]["num_ctx"]
        ollama.truncated                 # prompts Ollama would have cut silently (longer than num_ctx)

Endpoints: ``GET /api/version``, ``GET /api/tags``, ``GET /api/ps`` (loaded models with their
``context_length``), ``POST /api/show`` (``model_info["<family>.context_length"]`` = the trained window),
``POST /api/chat`` (JSON, or NDJSON when ``stream`` is true/absent — Ollama streams by default; ``format``
takes a JSON Schema and the default answer follows it; ``options.num_ctx`` sets the window, default
4,096), ``POST /api/embed`` (``input`` string or list → ``embeddings``). An unknown model answers 404
``{"error": "model \\"x\\" not found, try pulling it first"}``.

Like real Ollama, a prompt longer than ``num_ctx`` is NOT refused: it is cut (the double keeps the last
``num_ctx`` tokens' worth, reports ``prompt_eval_count = num_ctx`` and records it in ``truncated``), which
is why the provider must set ``num_ctx``. Tokenizer: ``ceil(len(text) / 4)`` per message, plus 4.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ctistudio.testing.http_double import ChatCall, Exchange, HttpDouble, Reply, hashed_embedding, split_tokens

CHAT, EMBED = "/api/chat", "/api/embed"
DEFAULT_NUM_CTX = 4096


@dataclass
class OllamaModel:
    name: str
    trained_context: int = 32768
    family: str = "qwen2"
    embedding: bool = False
    dimensions: int = 768


class OllamaDouble(HttpDouble):
    prediction_paths = (CHAT, EMBED)
    chat_path = CHAT

    def __init__(
        self,
        *,
        models: dict[str, int] | None = None,
        embeddings: dict[str, int] | None = None,
        version: str = "0.12.6",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.version = version
        self.models: dict[str, OllamaModel] = {}
        for name, window in (models if models is not None else {"qwen2.5-coder:1.5b": 32768}).items():
            self.models[name] = OllamaModel(name, trained_context=window)
        for name, dims in (embeddings if embeddings is not None else {"nomic-embed-text": 768}).items():
            self.models[name] = OllamaModel(name, 2048, "nomic-bert", embedding=True, dimensions=dims)
        self.loaded: dict[str, int] = {}  # model -> num_ctx it is loaded with
        self.truncated: list[dict[str, int]] = []
        self.route("GET", "/api/version", lambda ex: ex.send_json(200, {"version": self.version}))
        self.route("GET", "/api/tags", self._tags)
        self.route("GET", "/api/ps", self._ps)
        self.route("POST", "/api/show", self._show)
        self.route("POST", CHAT, self._chat)
        self.route("POST", EMBED, self._embed)

    def env(self) -> dict[str, str]:
        return {"OLLAMA_URL": self.root_url, "OLLAMA_ENABLED": "true"}

    def server_error_body(self) -> Any:
        return {"error": "llama runner process has terminated: exit status 2"}

    def rate_limit_body(self) -> Any:
        return {"error": "server busy, please try again.  maximum pending requests exceeded"}

    def unknown_endpoint(self, exchange: Exchange) -> None:
        exchange.send_json(404, {"error": "404 page not found"})

    # -- model state ---------------------------------------------------------------------------------
    def _find(self, exchange: Exchange, kind: str) -> OllamaModel | None:
        body = exchange.body if isinstance(exchange.body, dict) else {}
        name = body.get("model") or body.get("name") or ""
        model = self.models.get(name) or self.models.get(f"{name}:latest")
        if model is None or (kind == "embed" and not model.embedding) or (kind == "chat" and model.embedding):
            if model is not None:
                exchange.send_json(400, {"error": f'"{name}" does not support {kind}'})
            else:
                exchange.send_json(404, {"error": f'model "{name}" not found, try pulling it first'})
            return None
        return model

    def _tags(self, exchange: Exchange) -> None:
        exchange.send_json(200, {"models": [self._describe(m) for m in self.models.values()]})

    def _ps(self, exchange: Exchange) -> None:
        running = [
            {**self._describe(self.models[name]), "context_length": ctx, "expires_at": _now(), "size_vram": 0}
            for name, ctx in self.loaded.items()
        ]
        exchange.send_json(200, {"models": running})

    def _describe(self, model: OllamaModel) -> dict[str, Any]:
        return {
            "name": model.name,
            "model": model.name,
            "modified_at": _now(),
            "size": 986_000_000,
            "digest": "0" * 64,
            "details": {
                "format": "gguf",
                "family": model.family,
                "parameter_size": "1.5B",
                "quantization_level": "Q4_K_M",
            },
        }

    def _show(self, exchange: Exchange) -> None:
        model = self._find(exchange, "show")
        if model is None:
            return
        exchange.send_json(
            200,
            {
                "modelfile": f"FROM {model.name}",
                "parameters": "stop <|im_end|>",
                "details": self._describe(model)["details"],
                "model_info": {
                    "general.architecture": model.family,
                    f"{model.family}.context_length": model.trained_context,
                    f"{model.family}.embedding_length": model.dimensions,
                },
                "capabilities": ["embedding"] if model.embedding else ["completion"],
            },
        )

    # -- chat ------------------------------------------------------------------------------------------
    def _chat(self, exchange: Exchange) -> None:
        body = exchange.body if isinstance(exchange.body, dict) else {}
        model = self._find(exchange, "chat")
        if model is None:
            return
        messages = body.get("messages") or []
        options = body.get("options") or {}
        num_ctx = int(options.get("num_ctx") or DEFAULT_NUM_CTX)
        self.loaded[model.name] = num_ctx  # Ollama (re)loads the model with the requested window
        prompt = sum(self.tokens(str(m.get("content") or "")) + 4 for m in messages)
        evaluated = prompt
        if prompt > num_ctx:
            with self.lock:
                self.truncated.append({"prompt_tokens": prompt, "num_ctx": num_ctx})
            evaluated = num_ctx
        schema = body.get("format") if isinstance(body.get("format"), dict) else None
        call = ChatCall(
            model=model.name,
            requested_model=body.get("model"),
            messages=messages,
            response_format={"type": "json_schema", "json_schema": {"schema": schema}} if schema else None,
            max_tokens=options.get("num_predict"),
            stream=body.get("stream", True) is not False,
            prompt_tokens=evaluated,
            body=body,
        )
        reply = self.next_reply(call)
        tokens = split_tokens(reply.content, self.chars_per_token)
        limit = options.get("num_predict")
        done_reason = "stop"
        if isinstance(limit, int) and 0 < limit < len(tokens):
            tokens, done_reason = tokens[:limit], "length"
        time.sleep(self.latency if reply.latency is None else reply.latency)
        final = self._final(model.name, evaluated, len(tokens), done_reason)
        if call.stream:
            self._stream(exchange, model.name, tokens, final, reply)
        else:
            message = {"role": "assistant", "content": "".join(tokens)}
            if reply.reasoning:
                message["thinking"] = reply.reasoning
            exchange.send_json(200, {**final, "message": message})

    def _final(self, model: str, prompt: int, generated: int, reason: str) -> dict[str, Any]:
        return {
            "model": model,
            "created_at": _now(),
            "done": True,
            "done_reason": reason,
            "total_duration": 1_000_000 * (prompt + generated),
            "load_duration": 1_000_000,
            "prompt_eval_count": prompt,
            "prompt_eval_duration": 500_000 * max(prompt, 1),  # 2,000 tokens/s
            "eval_count": generated,
            "eval_duration": 10_000_000 * max(generated, 1),  # 100 tokens/s
        }

    def _stream(self, exchange: Exchange, model: str, tokens: list[str], final: dict[str, Any], reply: Reply) -> None:
        handler = exchange.handler
        exchange.status = 200
        handler.send_response(200)
        handler.send_header("Content-Type", "application/x-ndjson")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        lines = []
        if reply.reasoning:
            lines.append({"model": model, "created_at": _now(), "message": {"role": "assistant", "content": "",
                          "thinking": reply.reasoning}, "done": False})  # fmt: skip
        lines += [
            {"model": model, "created_at": _now(), "message": {"role": "assistant", "content": t}, "done": False}
            for t in tokens
        ]
        lines.append({**final, "message": {"role": "assistant", "content": ""}})
        for index, line in enumerate(lines):
            if exchange.drop_after is not None and index >= exchange.drop_after:
                exchange.drop()
                return
            if index and self.token_latency:
                time.sleep(self.token_latency)
            if line.get("done") and exchange.drop_after is None:
                exchange.complete()  # the client may stop at the "done" line
            raw = (json.dumps(line) + "\n").encode()
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        if exchange.drop_after is not None:  # a drop armed beyond the last line still cuts the stream
            exchange.drop()
            return
        exchange.complete()
        handler.wfile.write(b"0\r\n\r\n")

    # -- embeddings -------------------------------------------------------------------------------------
    def _embed(self, exchange: Exchange) -> None:
        model = self._find(exchange, "embed")
        if model is None:
            return
        raw = exchange.body.get("input")
        texts = [raw] if isinstance(raw, str) else list(raw or [])
        vectors = [hashed_embedding(str(t), model.dimensions) for t in texts]
        exchange.send_json(
            200,
            {"model": model.name, "embeddings": vectors, "prompt_eval_count": sum(self.tokens(str(t)) for t in texts)},
        )


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
