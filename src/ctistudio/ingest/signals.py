"""Matching keyword signals in text and keeping what matched as evidence (shared by hunt score and platforms).

A :class:`Signal` is a named regular expression with points per distinct match and a cap. Matching keeps
the distinct matched strings (up to five, as they appear in the text) so every number shown to a user can
be traced back to the words that produced it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

MAX_SHOWN_MATCHES = 5
MAX_MATCH_CHARS = 160


@dataclass(frozen=True)
class Signal:
    name: str
    category: str
    pattern: re.Pattern[str]
    points: float  # per distinct match (negative for negative signals)
    cap: float  # most this signal may add (or, if negative, subtract)
    description: str = ""


def signal(name: str, category: str, pattern: str, points: float, cap: float, description: str = "") -> Signal:
    return Signal(name, category, re.compile(pattern, re.IGNORECASE | re.MULTILINE), points, cap, description)


@dataclass
class Evidence:
    """What one signal found: its points, how many distinct matches, and some of them verbatim."""

    signal: str
    category: str
    points: float
    count: int
    matches: list[str] = field(default_factory=list)
    description: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _shown(match: str) -> str:
    compact = " ".join(match.split())
    return compact if len(compact) <= MAX_MATCH_CHARS else compact[: MAX_MATCH_CHARS - 1] + "…"


def distinct_matches(sig: Signal, text: str) -> list[str]:
    """Distinct matches of ``sig`` in ``text`` (case-insensitive identity, first spelling kept)."""
    seen: dict[str, str] = {}
    evidence = "m" if "m" in sig.pattern.groupindex else 0  # a pattern may name the part that is evidence
    for found in sig.pattern.finditer(text):
        value = (found.group(evidence) or found.group(0)).strip()
        key = " ".join(value.lower().split())
        if key and key not in seen:
            seen[key] = value
    return list(seen.values())


def evaluate(sig: Signal, text: str) -> Evidence | None:
    """The evidence for one signal, or None when it does not match."""
    matches = distinct_matches(sig, text)
    if not matches:
        return None
    raw = sig.points * len(matches)
    points = max(raw, sig.cap) if sig.points < 0 else min(raw, sig.cap)
    return Evidence(
        signal=sig.name,
        category=sig.category,
        points=round(points, 2),
        count=len(matches),
        matches=[_shown(m) for m in matches[:MAX_SHOWN_MATCHES]],
        description=sig.description,
    )
