"""What the deterministic finders return: a verbatim span of the article that looks like an observable.

Shared by the pre-extractor (:mod:`ctistudio.pipeline.preextract`) and the finders it runs (process lineage,
hunt queries, services and scheduled tasks), so each finder is a small module of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

EVIDENCE_CHARS = 400


@dataclass(frozen=True)
class Candidate:
    """One span of the article. ``value`` is refanged; ``start``/``end`` locate the span that proves it."""

    kind: str  # cmdline | lineage | registry | ip | domain | url | hash | scheduled_task | service | hunt_query
    value: str
    start: int
    end: int
    language: str | None = None  # hunt queries: kql | spl | eql | sigma
    attributes: tuple[tuple[str, str], ...] = ()  # e.g. (("parent", "cmd.exe"), ("child", "whoami.exe"))

    def quote(self, article: str) -> str:
        return article[self.start : self.end]

    def evidence(self, article: str) -> str:
        """The article's line(s) around the span: the command that created a service, not just its name."""
        return enclosing_lines(article, self.start, self.end)

    def attribute_map(self) -> dict[str, str]:
        return dict(self.attributes)


def enclosing_lines(article: str, start: int, end: int, limit: int = EVIDENCE_CHARS) -> str:
    """``article[start:end]`` widened to whole lines, cut to about ``limit`` characters around the span."""
    line_start = article.rfind("\n", 0, start) + 1
    line_end = article.find("\n", end)
    line_end = len(article) if line_end < 0 else line_end
    if line_end - line_start > max(limit, end - start):
        room = max(0, limit - (end - start)) // 2
        line_start, line_end = max(line_start, start - room), min(line_end, end + room)
    return article[line_start:line_end].strip()


def unquote(text: str) -> str:
    """A name without the quotes or backticks around it."""
    return text.strip().strip("\"'`“”‘’").strip()
