"""Recognise "the prompt does not fit" in the wording of every server we talk to.

Servers report context overflow in free text, each differently (wordings collected in
``shared/docs/LLM_SERVERS.md``). :func:`classify_overflow` turns any of them into the two numbers that
matter — prompt tokens and the loaded context length — or ``None`` when the text is not an overflow.
Generic substring matching (as LiteLLM does) misses LM Studio's phrasing, so each wording has its own
pattern, and a test pins each one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class OverflowFacts:
    prompt_tokens: int | None
    context_length: int | None


_INT = r"(\d[\d,]*)"

# (pattern, group index of prompt tokens or 0, group index of context length or 0); first match wins.
_PATTERNS: list[tuple[re.Pattern[str], int, int]] = [
    # LM Studio (llama.cpp engine): "Trying to keep the first 15857 tokens when context the overflows. However,
    # the model is loaded with context length of only 4096 tokens, which is not enough."
    (
        re.compile(
            rf"keep the first {_INT} tokens when context (?:the )?overflows.*?context length of only {_INT} tokens",
            re.I | re.S,
        ),
        1,
        2,
    ),
    (re.compile(rf"context length of only {_INT} tokens", re.I), 0, 1),
    # LM Studio (MLX engine): "The number of tokens to keep from the initial prompt is greater than the
    # context length" / "Context size has been exceeded"
    (re.compile(r"tokens to keep from the initial prompt is greater than the context length", re.I), 0, 0),
    (re.compile(r"context size has been exceeded", re.I), 0, 0),
    # llama-server: "request (5630 tokens) exceeds the available context size (2048 tokens), try increasing it"
    (re.compile(rf"request \({_INT} tokens\) exceeds the available context size \({_INT} tokens\)", re.I), 1, 2),
    (re.compile(r"exceeds the available context size", re.I), 0, 0),
    # llama-cpp-python: "This model's maximum context length is 4096 tokens. However, you requested 5638 tokens
    # (5630 in the messages, 8 in the completion)" — the prompt is the "in the messages" figure.
    (re.compile(rf"maximum context length is {_INT} tokens.*?\({_INT} in the messages", re.I | re.S), 2, 1),
    # OpenAI: "This model's maximum context length is 128000 tokens. However, your messages resulted in
    # 130000 tokens." (older: "you requested N tokens")
    (
        re.compile(rf"maximum context length is {_INT} tokens.*?(?:requested|resulted in) {_INT} tokens", re.I | re.S),
        2,
        1,
    ),
    # Anthropic: "prompt is too long: 215000 tokens > 200000 maximum"
    (re.compile(rf"prompt is too long: {_INT} tokens > {_INT} maximum", re.I), 1, 2),
    # Ollama: "the input length exceeds the context length" (embed, truncate=false), "input length exceeds
    # maximum context length", "prompt too long; exceeded max context length by 58 tokens"
    (re.compile(r"input (?:length )?exceeds (?:the )?(?:maximum )?context length", re.I), 0, 0),
    (re.compile(r"exceeded (?:the )?max(?:imum)? context length", re.I), 0, 0),
    # Machine-readable codes, and the seed's own words.
    (re.compile(r"context_length_exceeded|exceed_context_size_error|context overflow", re.I), 0, 0),
]


def _num(text: str | None) -> int | None:
    return int(text.replace(",", "")) if text else None


def classify_overflow(text: str) -> OverflowFacts | None:
    """Return the overflow numbers found in ``text`` (an error message or body), or ``None``."""
    for pattern, prompt_group, ctx_group in _PATTERNS:
        match = pattern.search(text)
        if match:
            return OverflowFacts(
                prompt_tokens=_num(match.group(prompt_group))
                if prompt_group
                else _find_json_int(text, "n_prompt_tokens"),
                context_length=_num(match.group(ctx_group)) if ctx_group else _find_json_int(text, "n_ctx"),
            )
    return None


def _find_json_int(text: str, key: str) -> int | None:
    match = re.search(rf'"{key}"\s*:\s*(\d+)', text)
    return int(match.group(1)) if match else None


_MODEL_MISSING = re.compile(
    r"model[_ ]not[_ ]found|no models? (?:are )?loaded|model .{0,120}? not found|not a valid model|"
    r"invalid model identifier|model .{0,120}? does not exist|try pulling it first|failed to load model",
    re.I | re.S,
)


def looks_like_model_missing(text: str) -> bool:
    """True when an error message or body says the model is unknown or not loaded.

    Covers LM Studio ("Invalid model identifier …", "No models loaded …", code ``model_not_found``), OpenAI
    ("The model `x` does not exist …"), Ollama ("model 'x' not found, try pulling it first").
    """
    return bool(_MODEL_MISSING.search(text))
