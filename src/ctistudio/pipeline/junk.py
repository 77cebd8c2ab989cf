"""Junk filter: remove navigation, marketing and boilerplate chunks before any model reads the article.

Deterministic rules decide; a learned classifier may be added, and it is loaded from a JSON file of
weights (never a pickle, which would execute code on load). Chunks with a technical signal (a code block,
a command line, a registry path, a hash, an indicator) are always kept, whatever the rules or the
classifier say: losing an artefact costs far more than keeping a paragraph of marketing.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ctistudio.errors import InvalidInput
from ctistudio.pipeline.preextract import pre_extract

_BOILERPLATE = [
    r"\bsubscribe\b",
    r"\bnewsletter\b",
    r"\brequest a demo\b|\bbook a demo\b|\bschedule a demo\b|\bget a demo\b",
    r"\bfree trial\b|\bstart your trial\b",
    r"\bcontact (?:our )?(?:sales|us)\b|\btalk to an expert\b",
    r"\blearn more about (?:our|how)\b",
    r"\bdownload (?:the|our) (?:full )?(?:report|whitepaper|e-?book|datasheet)\b",
    r"\bregister (?:now|today|for)\b|\bwebinar\b",
    r"\bfollow us\b|\bshare (?:this|on)\b",
    r"\ball rights reserved\b|©|\bcopyright \d{4}",
    r"\bprivacy policy\b|\bterms of (?:use|service)\b|\bcookie(?:s| settings| preferences)\b",
    r"\brelated (?:posts|articles|content|resources)\b|\brecommended for you\b|\bread more\b",
    r"\bskip to (?:main )?content\b|\bsign in\b|\blog in\b|\bmain menu\b",
    r"^(?:tags|categories|posted in|filed under)\s*:",
    r"\bour (?:platform|solution|customers|experts) (?:can|help|provide|protect)",
]
_BOILERPLATE_RE = [re.compile(p, re.I | re.M) for p in _BOILERPLATE]
_FENCE = re.compile(r"```.*?```", re.S)
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_FLAT_CHUNK = 1500  # a "paragraph" longer than this with no line breaks is flattened HTML: judge sentences


@dataclass
class RemovedChunk:
    reason: str
    chars: int
    preview: str


@dataclass
class JunkResult:
    """The article without its junk, and what was removed (kept in the run's checkpoint)."""

    text: str
    removed: list[RemovedChunk] = field(default_factory=list)

    @property
    def removed_chars(self) -> int:
        return sum(r.chars for r in self.removed)


class LinearChunkClassifier:
    """A bag-of-words logistic model over lower-cased word tokens, stored as JSON.

    File format: ``{"format": "ctistudio-linear-chunk/1", "bias": b, "threshold": t, "weights": {token: w}}``.
    ``junk_probability(text)`` is ``sigmoid(b + Σ w[token] / sqrt(n_tokens))``.
    """

    FORMAT = "ctistudio-linear-chunk/1"

    def __init__(self, weights: dict[str, float], bias: float = 0.0, threshold: float = 0.5) -> None:
        self.weights = weights
        self.bias = bias
        self.threshold = threshold

    @classmethod
    def load(cls, path: Path) -> LinearChunkClassifier:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidInput(
                f"cannot read the junk classifier {path}: {exc}",
                fix="Point to a JSON file written by LinearChunkClassifier.save().",
            ) from exc
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT or not isinstance(data.get("weights"), dict):
            raise InvalidInput(
                f"{path} is not a ctistudio junk classifier (format {cls.FORMAT!r} expected)",
                fix="Re-export the classifier with LinearChunkClassifier.save().",
            )
        weights = {str(k): float(v) for k, v in data["weights"].items()}
        return cls(weights, float(data.get("bias", 0.0)), float(data.get("threshold", 0.5)))

    def save(self, path: Path) -> None:
        payload = {"format": self.FORMAT, "bias": self.bias, "threshold": self.threshold, "weights": self.weights}
        Path(path).write_text(json.dumps(payload, indent=1, sort_keys=True), encoding="utf-8")

    def junk_probability(self, text: str) -> float:
        tokens = re.findall(r"[a-z][a-z0-9']+", text.lower())
        if not tokens:
            return 0.0
        total = self.bias + sum(self.weights.get(t, 0.0) for t in tokens) / math.sqrt(len(tokens))
        return 1.0 / (1.0 + math.exp(-total))

    def is_junk(self, text: str) -> bool:
        return self.junk_probability(text) >= self.threshold


def _has_signal(chunk: str) -> bool:
    return "```" in chunk or bool(pre_extract(chunk).candidates)


def _navigation(chunk: str) -> bool:
    """Short link-only lines: menus, breadcrumbs, tag clouds, footers."""
    lines = [line.strip(" -*|•\t") for line in chunk.splitlines() if line.strip()]
    if not lines:
        return False
    link_chars = sum(len(m.group(0)) for m in _MD_LINK.finditer(chunk))
    if link_chars > 0.6 * len(chunk.strip()):
        return True
    short = [line for line in lines if len(line) < 30 and not line.endswith((".", ":", "?", "!"))]
    return len(lines) >= 4 and len(short) >= 0.8 * len(lines)


def _boilerplate_hits(text: str) -> int:
    return sum(1 for pattern in _BOILERPLATE_RE if pattern.search(text))


def _judge(chunk: str, classifier: LinearChunkClassifier | None) -> str | None:
    """The reason to drop ``chunk``, or ``None`` to keep it."""
    if _has_signal(chunk):
        return None
    if chunk.lstrip().startswith("#"):
        return None  # headings structure the article
    if _navigation(chunk):
        return "navigation"
    hits = _boilerplate_hits(chunk)
    if (hits >= 1 and len(chunk) < 400) or (hits >= 2 and len(chunk) < 1200) or hits >= 4:
        return "boilerplate"
    if classifier is not None and classifier.is_junk(chunk):
        return "classifier"
    return None


def _chunks(text: str) -> list[str]:
    """Paragraphs, with fenced code blocks kept whole and flattened walls of text split into sentences."""
    pieces: list[str] = []
    position = 0
    for fence in _FENCE.finditer(text):
        pieces.extend(re.split(r"\n\s*\n", text[position : fence.start()]))
        pieces.append(fence.group(0))
        position = fence.end()
    pieces.extend(re.split(r"\n\s*\n", text[position:]))
    out: list[str] = []
    for piece in pieces:
        if len(piece) > _FLAT_CHUNK and "\n" not in piece.strip() and "```" not in piece:
            out.extend(_SENTENCE.split(piece))
        elif piece.strip():
            out.append(piece)
    return out


def filter_junk(text: str, classifier: LinearChunkClassifier | None = None) -> JunkResult:
    """``text`` without navigation, marketing and boilerplate chunks (see the module docstring)."""
    kept: list[str] = []
    removed: list[RemovedChunk] = []
    for chunk in _chunks(text):
        reason = _judge(chunk, classifier)
        if reason is None:
            kept.append(chunk.strip("\n"))
        else:
            removed.append(RemovedChunk(reason=reason, chars=len(chunk), preview=" ".join(chunk.split())[:120]))
    return JunkResult(text="\n\n".join(kept), removed=removed)
