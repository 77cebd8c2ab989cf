"""The overflow classifier on every server's wording (shared/docs/LLM_SERVERS.md), and model-missing errors."""

from __future__ import annotations

import json

import pytest

from ctistudio.llm import BadRequest, ContextOverflow, ModelNotLoaded
from ctistudio.llm.overflow import classify_overflow, looks_like_model_missing
from ctistudio.llm.transport import HttpTransport

LMSTUDIO = json.dumps(
    {
        "error": "Trying to keep the first 15857 tokens when context the overflows. However, the model is loaded "
        "with context length of only 4096 tokens, which is not enough. Try to load the model with a larger "
        "context length, or provide a shorter input"
    }
)
LLAMA_SERVER = json.dumps(
    {
        "error": {
            "code": 400,
            "message": "request (5630 tokens) exceeds the available context size (2048 tokens), try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 5630,
            "n_ctx": 2048,
        }
    }
)
LLAMA_CPP_PYTHON = json.dumps(
    {
        "error": {
            "message": "This model's maximum context length is 4096 tokens. However, you requested 5638 tokens "
            "(5630 in the messages, 8 in the completion). Please reduce the length of the messages or completion.",
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
        }
    }
)
OLLAMA = json.dumps({"error": "the input length exceeds the context length"})
OPENAI = json.dumps(
    {
        "error": {
            "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in "
            "130512 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }
)
ANTHROPIC = json.dumps(
    {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "prompt is too long: 215000 tokens > 200000 maximum"},
    }
)


@pytest.mark.parametrize(
    ("body", "prompt", "window"),
    [
        (LMSTUDIO, 15857, 4096),
        (LLAMA_SERVER, 5630, 2048),
        (LLAMA_CPP_PYTHON, 5630, 4096),
        (OLLAMA, None, None),
        (OPENAI, 130512, 128000),
        (ANTHROPIC, 215000, 200000),
    ],
    ids=["lmstudio", "llama-server", "llama-cpp-python", "ollama", "openai", "anthropic"],
)
def test_every_wording_is_an_overflow_with_its_numbers(body: str, prompt: int | None, window: int | None):
    facts = classify_overflow(body)
    assert facts is not None
    assert (facts.prompt_tokens, facts.context_length) == (prompt, window)


@pytest.mark.parametrize(
    "text",
    [
        "The number of tokens to keep from the initial prompt is greater than the context length",  # LM Studio MLX
        "input length exceeds maximum context length",  # Ollama embed
        "prompt too long; exceeded max context length by 58 tokens",  # Ollama
        "Error: context overflow",  # the seed's words
    ],
)
def test_numberless_wordings_are_overflows(text: str):
    assert classify_overflow(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "channel error",
        "'response_format.type' must be 'json_schema' or 'text'",
        "No models loaded. Please load a model in the developer page or use the 'lms load' command.",
        "Rate limit reached for gpt-4o-mini",
        "max_tokens: Field required",
    ],
)
def test_other_errors_are_not_overflows(text: str):
    assert classify_overflow(text) is None


@pytest.mark.parametrize(
    "text",
    [
        'Invalid model identifier "o4-mini". Please specify a valid downloaded model (e.g., qwen/qwen3-4b-2507).',
        "No models loaded. Please load a model in the developer page or use the 'lms load' command.",
        'Model "local model" not found. Please specify a valid model.',
        "The model `gpt-9` does not exist or you do not have access to it.",
        "model 'llama3' not found, try pulling it first",
        '{"error": {"message": "x", "code": "model_not_found"}}',
    ],
)
def test_model_missing_wordings(text: str):
    assert looks_like_model_missing(text)


def test_transport_maps_status_and_body_to_the_hierarchy():
    transport = HttpTransport("http://127.0.0.1:9/v1", provider="lmstudio", fix_for=lambda kind: f"fix-{kind}")
    overflow = transport.map_status(400, LMSTUDIO, "http://x")
    assert isinstance(overflow, ContextOverflow)
    assert (overflow.prompt_tokens, overflow.context_length, overflow.status_code) == (15857, 4096, 400)
    assert overflow.fix == "fix-context"
    missing = transport.map_status(400, json.dumps({"error": {"message": "Invalid model identifier \"x\".",
                                                              "code": "model_not_found"}}), "http://x")  # fmt: skip
    assert isinstance(missing, ModelNotLoaded) and missing.fix == "fix-model"
    bad = transport.map_status(
        400, json.dumps({"error": "'response_format.type' must be 'json_schema' or 'text'"}), "u"
    )
    assert isinstance(bad, BadRequest) and not bad.transient
    assert "'response_format.type' must be 'json_schema' or 'text'" in bad.message
