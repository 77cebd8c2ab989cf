"""One definition of "the same text" for the pipeline: refanging, case and whitespace folding.

Used by the hallucination guard (is this quote really in the article?), by de-duplication of extracted
items, and by the evals (does this item match the ground truth?). Matching the way analysts read:
``198.51.100[.]23`` is ``198.51.100.23``, ``hxxps://`` is ``https://``, case and runs of whitespace do not
matter, typographic quotes are plain quotes, and Markdown's escaping backslashes/backticks are noise.
"""

from __future__ import annotations

import re

# Defanging forms seen in CTI reports, most specific first.
_DEFANG = [
    (re.compile(r"\[\s*(?:\.|dot)\s*\]|\(\s*(?:\.|dot)\s*\)|\{\s*(?:\.|dot)\s*\}", re.I), "."),
    (re.compile(r"\[\s*:\s*\]"), ":"),
    (re.compile(r"\[\s*://\s*\]"), "://"),
    (re.compile(r"\[\s*(?:@|at)\s*\]", re.I), "@"),
    (re.compile(r"\[\s*/\s*\]"), "/"),
    (re.compile(r"\bhxxp(s?)\b", re.I), r"http\1"),
    (re.compile(r"\bh\[?tt\]?p(s?)\[?:\]?//", re.I), r"http\1://"),
    (re.compile(r"\bfxp\b", re.I), "ftp"),
]
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'", "\u00a0": " ", "\u200b": ""})
_WS = re.compile(r"\s+")


def refang(text: str) -> str:
    """``lantern-sync[.]workers[.]dev`` → ``lantern-sync.workers.dev``; ``hxxps`` → ``https``."""
    for pattern, replacement in _DEFANG:
        text = pattern.sub(replacement, text)
    return text


def fold(text: str) -> str:
    """Refanged, lower-cased, typographic quotes made plain, whitespace runs folded to one space."""
    return _WS.sub(" ", refang(text).translate(_QUOTES)).strip().lower()


def normalise_item(text: str) -> str:
    """The comparison key of an extracted item: :func:`fold` without wrapping quotes, backticks or a trailing
    backslash (``HKLM\\…\\Run\\`` and ``HKLM\\…\\Run`` are the same key)."""
    value = fold(text).rstrip("\\").rstrip()
    while len(value) >= 2 and value[0] == value[-1] and value[0] in "`'\"":
        value = value[1:-1].strip()
    return value


def _loose(text: str) -> str:
    """:func:`fold` with Markdown escapes and backticks removed and no spaces at all (for quote checks)."""
    folded = fold(text).replace("`", "").replace("\\\\", "\\")
    folded = re.sub(r"\\([_*\[\]()#+\-.!])", r"\1", folded)
    return folded.replace(" ", "")


class ArticleIndex:
    """Answers "does this quote appear in the article?" under the pipeline's normalisation.

    Models re-flow whitespace, drop Markdown escapes and refang indicators when they quote; none of that is
    a hallucination. Anything else (a paraphrase, an invented command line) is.
    """

    def __init__(self, article: str) -> None:
        self.article = article
        self._loose = _loose(article)
        self._lines: list[tuple[str, str]] | None = None  # (line, its loose form), built on first use

    def contains(self, quote: str) -> bool:
        needle = _loose(quote)
        return bool(needle) and needle in self._loose

    def contains_any_line(self, quote: str, *, min_chars: int = 12) -> bool:
        """True when the quote is in the article, or every long line of it is (models join code lines)."""
        if self.contains(quote):
            return True
        lines = [line for line in quote.splitlines() if len(line.strip()) >= min_chars]
        return len(lines) > 1 and all(self.contains(line) for line in lines)

    def line_with(self, quote: str, *, limit: int = 400) -> str | None:
        """The first line of the article that contains ``quote`` (under the same folding), cut to ``limit``."""
        needle = _loose(quote)
        if not needle:
            return None
        if self._lines is None:
            self._lines = [(line.strip(), _loose(line)) for line in self.article.splitlines() if line.strip()]
        for line, loose in self._lines:
            if needle in loose:
                return line if len(line) <= limit else _around(line, quote, limit)
        return None

    def exact_text(self, quote: str) -> str | None:
        """The article's own text of ``quote`` when a line holds it up to case, whitespace, backticks and
        doubled backslashes (what models change when they copy), else None (e.g. a refanged indicator)."""
        needle, _ = _skeleton(quote)
        if not needle:
            return None
        for line in self.article.splitlines():
            hay, spans = _skeleton(line)
            at = hay.find(needle)
            if at >= 0:
                return line[spans[at][0] : spans[at + len(needle) - 1][1]]
        return None


def _skeleton(text: str) -> tuple[str, list[tuple[int, int]]]:
    """``text`` lower-cased without whitespace and backticks, a doubled backslash as one, and for each
    character kept the span of ``text`` it stands for."""
    chars: list[str] = []
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(text):
        char = text[index]
        width = 2 if text.startswith("\\\\", index) else 1
        if not char.isspace() and char != "`":
            chars.append(char.lower())
            spans.append((index, index + width))
        index += width
    return "".join(chars), spans


def _around(line: str, quote: str, limit: int) -> str:
    """``limit`` characters of ``line`` around where ``quote`` starts (the whole line when it is not found)."""
    at = max(0, fold(line).find(fold(quote)[:20]))
    start = max(0, min(at - limit // 4, len(line) - limit))
    return line[start : start + limit]
