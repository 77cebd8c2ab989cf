"""Structured output: decode a model's JSON answer and check it against the requested JSON Schema.

Servers are asked for ``response_format: json_schema`` (constrained decoding where they support it), so
most answers are already valid. Free-text extraction below is the last resort for servers that ignore the
schema: it strips ``<think>`` blocks and Markdown fences and takes the first balanced JSON value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema

from ctistudio.llm.errors import BadOutput
from ctistudio.llm.reasoning import split_thinking


def extract_json(text: str) -> Any:
    """Decode the JSON value in ``text``; raise :class:`BadOutput` when there is none."""
    answer, _ = split_thinking(text)
    candidate = answer.strip()
    if candidate.startswith("```"):
        candidate = candidate.split("\n", 1)[1] if "\n" in candidate else ""
        candidate = candidate.rsplit("```", 1)[0]
    try:
        return json.loads(candidate)
    except ValueError:
        pass
    fragment = _first_balanced(candidate)
    if fragment is None:
        raise BadOutput("the model's answer contains no JSON value", raw=text)
    try:
        return json.loads(fragment)
    except ValueError as exc:
        raise BadOutput(f"the model's answer is not valid JSON: {exc}", raw=text) from exc


def _brackets(text: str) -> tuple[int, Iterator[tuple[int, str]]]:
    """Where the first JSON object or array starts (-1: none), and its brackets outside JSON strings."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    start = min(starts, default=-1)

    def scan() -> Iterator[tuple[int, str]]:
        in_string = escaped = False
        for index in range(start, len(text)):
            char = text[index]
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char in "{[]}":
                yield index, char

    return start, scan()


def _first_balanced(text: str) -> str | None:
    """The first ``{…}`` or ``[…]`` span with balanced brackets, honouring JSON strings."""
    start, brackets = _brackets(text)
    if start < 0:
        return None
    depth = 0
    for index, char in brackets:
        depth += 1 if char in "{[" else -1
        if depth == 0:
            return text[start : index + 1]
    return None


def truncated_json_candidates(text: str, limit: int = 64) -> list[str]:
    """JSON texts recovered from an answer cut off mid-value (``finish_reason == "length"``), longest first.

    Small models at temperature 0 sometimes repeat an item until the token budget ends, which leaves the
    JSON unterminated. Each candidate keeps the text up to the end of one complete object or array and
    closes what was still open, so a cut list of items keeps every item written in full. The caller
    validates the candidates against the schema (a cut that loses a required field does not qualify).
    """
    answer, _ = split_thinking(text)
    start, brackets = _brackets(answer)
    if start < 0:
        return []
    closers: list[str] = []
    cuts: list[tuple[int, str]] = []
    for index, char in brackets:
        if char in "{[":
            closers.append("}" if char == "{" else "]")
        elif not closers or closers.pop() != char or not closers:
            return []  # malformed, or the value is complete: nothing was cut
        else:
            cuts.append((index + 1, "".join(reversed(closers))))
    return [answer[start:cut] + closing for cut, closing in reversed(cuts[-limit:])]


def validate_against_schema(value: Any, schema: dict[str, Any]) -> None:
    """Raise :class:`BadOutput` listing every schema violation (path and message)."""
    validator = jsonschema.Draft202012Validator(schema)
    problems = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if problems:
        lines = [f"{'/'.join(map(str, p.absolute_path)) or '(root)'}: {p.message}" for p in problems[:20]]
        raise BadOutput("the model's JSON does not match the schema: " + "; ".join(lines), raw=json.dumps(value))


def parse_structured(text: str, schema: dict[str, Any]) -> Any:
    """Decode and validate; the value returned matches ``schema``."""
    value = extract_json(text)
    validate_against_schema(value, schema)
    return value


def repair_prompt(error: BadOutput, schema: dict[str, Any]) -> str:
    """The follow-up message that asks the model to correct its previous answer (one attempt only)."""
    return (
        "Your previous answer could not be used: "
        f"{error.message}\n\nReply again with ONLY a JSON value that matches this JSON Schema, "
        "no prose and no Markdown fences:\n"
        f"{json.dumps(schema, separators=(',', ':'))}"
    )
