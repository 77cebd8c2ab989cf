"""An article cut into numbered sentences, so that a model can cite one by number instead of retyping it.

Prose paragraphs are split at sentence ends (wrapped lines joined); list items, headings and table rows
are units of their own; every non-empty line of a fenced code block is one unit (a command line, a query
line). Each unit keeps its offsets in the article, so what a model cites is always the article's own text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.S | re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]*_]*\s+(?=[A-Z0-9`\"'(\[*_])")
# a line that starts a unit of its own: list item, heading, table row, quote
_OWN_LINE = re.compile(r"[ \t]*(?:[-*+•][ \t]|\d{1,3}[.)][ \t]|#|\||>)")
MIN_SENTENCE_CHARS = 5  # "1." or "e.g." before a space is not a sentence
MAX_UNIT_CHARS = 500


@dataclass(frozen=True)
class Sentence:
    number: int  # 1-based, in article order
    start: int
    end: int
    text: str  # whitespace folded (what a model reads)
    quote: str = ""  # the article's own text of the unit (what evidence shows and highlights)
    code: bool = False


def _line_spans(article: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, position = [], start
    while position < end:
        newline = article.find("\n", position, end)
        stop = end if newline < 0 else newline
        spans.append((position, stop))
        position = stop + 1
    return spans


def _logical_lines(article: str, start: int, end: int) -> list[tuple[int, int]]:
    """Wrapped prose lines joined; a blank line, a list/heading/table line or a line after ``:`` breaks."""
    out: list[list[int]] = []
    previous_breaks = True
    for a, b in _line_spans(article, start, end):
        line = article[a:b]
        if not line.strip():
            previous_breaks = True
            continue
        if previous_breaks or _OWN_LINE.match(line):
            out.append([a, b])
        else:
            out[-1][1] = b
        stripped = line.strip()
        previous_breaks = stripped.endswith(":") or stripped.startswith(("#", "|"))
    return [(a, b) for a, b in out]


def _split_long(article: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence ends inside ``[start, end)``; units still too long (flattened HTML) cut at a space."""
    pieces, cursor = [], start
    for match in _SENTENCE_END.finditer(article, start, end):
        if match.start() - cursor < MIN_SENTENCE_CHARS:
            continue
        pieces.append((cursor, match.start()))
        cursor = match.end()
    pieces.append((cursor, end))
    out = []
    for a, b in pieces:
        while b - a > MAX_UNIT_CHARS:
            cut = article.rfind(" ", a + MAX_UNIT_CHARS // 2, a + MAX_UNIT_CHARS)
            cut = cut if cut > a else a + MAX_UNIT_CHARS
            out.append((a, cut))
            a = cut
        out.append((a, b))
    return out


def split_sentences(article: str) -> list[Sentence]:
    """The article's units (sentences, list items, code lines), numbered from 1, with their offsets."""
    spans: list[tuple[int, int, bool]] = []
    position = 0
    for fence in _FENCE.finditer(article):
        for a, b in _logical_lines(article, position, fence.start()):
            spans += [(x, y, False) for x, y in _split_long(article, a, b)]
        spans += [(a, b, True) for a, b in _line_spans(article, fence.start(1), fence.end(1))]
        position = fence.end()
    for a, b in _logical_lines(article, position, len(article)):
        spans += [(x, y, False) for x, y in _split_long(article, a, b)]
    out: list[Sentence] = []
    for a, b, code in spans:
        text = " ".join(article[a:b].split())
        if text and not text.startswith("```"):
            # offsets of the unit without its surrounding whitespace
            lead = len(article[a:b]) - len(article[a:b].lstrip())
            trail = len(article[a:b]) - len(article[a:b].rstrip())
            out.append(Sentence(len(out) + 1, a + lead, b - trail, text, article[a + lead : b - trail], code))
    return out
