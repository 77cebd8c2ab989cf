"""Separate a reasoning model's thinking from its answer.

Reasoning models (deepseek-r1, qwen3 in thinking mode) either put ``<think>…</think>`` at the start of
``content`` or return the thoughts in a separate ``reasoning_content`` field. Answers are never parsed out
of reasoning text unless the model gave no content at all.
"""

from __future__ import annotations

import re

_THINK_BLOCK = re.compile(r"<think>.*?</think>\s*", re.S | re.I)
_OPEN = "<think>"
_CLOSE = "</think>"


def split_thinking(content: str) -> tuple[str, str | None]:
    """Return ``(answer, thoughts)``: ``<think>`` blocks removed from ``content``.

    An unterminated ``<think>`` (the model ran out of tokens while thinking) leaves no answer.
    """
    thoughts = [m.group(0) for m in _THINK_BLOCK.finditer(content)]
    answer = _THINK_BLOCK.sub("", content)
    lower = answer.lower()
    if _OPEN in lower:
        index = lower.index(_OPEN)
        thoughts.append(answer[index:])
        answer = answer[:index]
    # Some templates emit only the closing tag (the opening one is part of the prompt).
    if _CLOSE in answer.lower() and not thoughts:
        index = answer.lower().index(_CLOSE)
        thoughts.append(answer[:index])
        answer = answer[index + len(_CLOSE) :]
    thought_text = "".join(thoughts).replace(_OPEN, "").replace(_CLOSE, "").strip() or None
    return answer.strip(), thought_text


def choose_answer(content: str | None, reasoning_content: str | None) -> tuple[str, str | None]:
    """The answer text and the reasoning, given a message's ``content`` and ``reasoning_content``."""
    answer, thoughts = split_thinking(content or "")
    reasoning = "\n".join(x for x in (reasoning_content, thoughts) if x) or None
    if not answer and reasoning_content and not content:
        # Some servers put everything into reasoning_content when no content came; use it only then.
        answer = split_thinking(reasoning_content)[0]
    return answer, reasoning


class ThinkFilter:
    """Incremental ``<think>`` stripper for streamed text: feed deltas, get only answer text back."""

    def __init__(self) -> None:
        self._buffer = ""
        self._inside = False
        self._started = False  # any answer text emitted yet (leading whitespace is dropped until then)

    def feed(self, delta: str) -> str:
        self._buffer += delta
        out: list[str] = []
        while self._buffer:
            if self._inside:
                end = self._buffer.lower().find(_CLOSE)
                if end < 0:
                    # Keep a tail that could be the start of "</think>".
                    self._buffer = self._buffer[-(len(_CLOSE) - 1) :]
                    break
                self._buffer = self._buffer[end + len(_CLOSE) :]
                self._inside = False
                continue
            start = self._buffer.lower().find(_OPEN)
            if start >= 0:
                out.append(self._buffer[:start])
                self._buffer = self._buffer[start + len(_OPEN) :]
                self._inside = True
                continue
            # Hold back a possible partial "<think" at the end.
            keep = _partial_suffix(self._buffer.lower(), _OPEN)
            emit, self._buffer = self._buffer[: len(self._buffer) - keep], self._buffer[len(self._buffer) - keep :]
            out.append(emit)
            break
        text = "".join(out)
        if not self._started:
            text = text.lstrip()
            self._started = bool(text)
        return text

    def flush(self) -> str:
        text = "" if self._inside else self._buffer
        self._buffer = ""
        return text


def _partial_suffix(text: str, token: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``token``."""
    for size in range(min(len(token) - 1, len(text)), 0, -1):
        if token.startswith(text[-size:]):
            return size
    return 0
