"""The extraction agents' answer: pre-extractor candidates selected by number, plus new items from the article.

Each agent sees the candidates of its kind as a numbered list and answers
``{"keep": [numbers], "new": [items the list missed]}`` under a JSON Schema built for that list: ``keep`` is
an enum of the listed numbers, so a server with constrained decoding (llama.cpp/LM Studio grammars, OpenAI
strict output, Anthropic tool input) cannot select a candidate that does not exist, and selecting costs a
few tokens instead of re-quoting a command line. ``new`` items are plain strings (a lineage pair is
``{"parent", "child"}``), checked by the hallucination guard like any model output.

The agent's result is always the union of the floor (every candidate of the kind) and what the model adds:
a selected candidate, or a new item that equals one, is marked ``origin: model``; the others stay
``origin: pattern``. A weak model can add; it can never remove.

No ``maxLength`` and no ``maxItems`` on the list of strings: llama.cpp turns those into grammar
repetitions that slow decoding (see :mod:`ctistudio.pipeline.models`); the answer budget bounds them. The
``keep`` list has ``maxItems`` (one per listed number, a small rule repeated at most 60 times), so a model
cannot loop on numbers.
"""

from __future__ import annotations

from typing import Any

from ctistudio.pipeline.candidates import Candidate

MAX_LISTED = 60  # candidates numbered in one prompt (the rest stay in the floor, unlisted)
LISTED_CHARS = 160  # a listed candidate is shown up to this length: enough to recognise it
KEEP_TOKENS = 4  # tokens to write one selected number (digits, comma, space)
NEW_ITEMS_MAX_TOKENS = 400
NEW_ITEMS_MIN_TOKENS = 64
MAX_NEW_ITEMS = 40  # new items looked at per answer (a model repeating itself writes more)

_LINEAGE_ITEM = {
    "type": "object",
    "properties": {"parent": {"type": "string"}, "child": {"type": "string"}},
    "required": ["parent", "child"],
    "additionalProperties": False,
}


def selection_schema(kind: str, listed: int) -> dict[str, Any]:
    """The JSON Schema of one agent's answer: ``keep`` (only when candidates are listed) and ``new``."""
    properties: dict[str, Any] = {}
    if listed:
        numbers = list(range(1, listed + 1))
        properties["keep"] = {"type": "array", "items": {"type": "integer", "enum": numbers}, "maxItems": listed}
    properties["new"] = {"type": "array", "items": _LINEAGE_ITEM if kind == "lineage" else {"type": "string"}}
    # no key is required: an answer cut inside a looping ``new`` string keeps its complete ``keep`` list
    # (the gateway salvages the longest complete prefix that fits the schema); an empty answer is no answer
    return {"type": "object", "properties": properties, "additionalProperties": False}


def is_empty(answer: dict[str, Any]) -> bool:
    """An answer that says nothing at all (``{}``): the agent had no usable answer."""
    return "keep" not in answer and "new" not in answer


def answer_budget(listed: int, article_text: str) -> int:
    """Tokens an agent may write: a few per listed candidate, and room for new items that grows with the
    article (an answer much longer than that is a small model repeating itself until its budget)."""
    room = min(NEW_ITEMS_MAX_TOKENS, NEW_ITEMS_MIN_TOKENS + len(article_text) // 60)
    return 16 + KEEP_TOKENS * listed + room


def _shown(candidate: Candidate) -> str:
    text = " ".join(candidate.value.split())
    text = text if len(text) <= LISTED_CHARS else text[: LISTED_CHARS - 1] + "…"
    if candidate.kind in ("ip", "domain", "url"):
        return f"{text} ({candidate.kind})"
    if candidate.kind == "hunt_query" and candidate.language:
        return f"{text} ({candidate.language})"
    return text


def candidate_listing(candidates: list[Candidate]) -> str:
    """The numbered list an agent selects from (``1: …``), one candidate a line."""
    return "\n".join(f"{number}: {_shown(c)}" for number, c in enumerate(candidates[:MAX_LISTED], start=1))


def kept_numbers(answer: dict[str, Any], listed: int) -> list[int]:
    """The selected numbers that exist, each once, in the order given."""
    out: list[int] = []
    for number in answer.get("keep") or []:
        if isinstance(number, int) and 1 <= number <= listed and number not in out:
            out.append(number)
    return out


def new_items(kind: str, answer: dict[str, Any]) -> list[str | tuple[str, str]]:
    """The answer's new items (strings, or ``(parent, child)`` for lineage), blanks and repeats left out."""
    out: list[str | tuple[str, str]] = []
    for item in (answer.get("new") or [])[: MAX_NEW_ITEMS * 4]:
        value: str | tuple[str, str]
        if kind == "lineage":
            if not isinstance(item, dict):
                continue
            value = (str(item.get("parent") or "").strip(), str(item.get("child") or "").strip())
            if not all(value):
                continue
        elif isinstance(item, str) and item.strip():
            value = item.strip()
        else:
            continue
        if value not in out:
            out.append(value)
        if len(out) >= MAX_NEW_ITEMS:
            break
    return out
