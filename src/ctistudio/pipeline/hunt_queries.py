"""Hunt and detection queries (KQL, SPL, EQL, Sigma) in an article, fenced or not.

Three places: fenced code blocks (the language from the fence's tag, else from the content); query blocks
that scraped HTML left without fences — a line that starts a query (``DeviceProcessEvents``,
``index=…``, ``process where …``, ``let x = …``) and the lines that continue it (``| where …``,
``and …``, indented lines) up to a blank line or prose; and one-line queries in inline code spans.
"""

from __future__ import annotations

import re

from ctistudio.pipeline.candidates import Candidate

_FENCE = re.compile(r"```([^\n`]*)\n(.*?)```", re.S)
_INLINE = re.compile(r"(?<!`)`([^`\n]{15,400})`(?!`)")
_TAG_LANGUAGES = {
    "kql": "kql",
    "kusto": "kql",
    "spl": "spl",
    "splunk": "spl",
    "eql": "eql",
    "sigma": "sigma",
}
_EQL_CATEGORIES = r"(?:process|file|registry|network|library|dns|driver|any|authentication)"
_KQL_TABLE = (
    r"(?:Device\w+|Security\w*|Sysmon\w*|Syslog|Windows\w*|Azure\w+|SigninLogs|AADSignInEvents\w*|AuditLogs|"
    r"OfficeActivity|Email\w+|Identity\w+|CloudAppEvents|Behavior\w+|Alert\w+|CommonSecurityLog|Event|"
    r"AzureActivity|W3CIISLog|\w+_CL)"
)
_LANGUAGE_SIGNS = [
    ("sigma", re.compile(r"^\s*detection\s*:", re.M)),
    ("eql", re.compile(rf"\b{_EQL_CATEGORIES}\s+where\b|\bsequence\s+(?:by|with)\b", re.I)),
    (
        "spl",
        re.compile(r"\b(?:index|sourcetype)\s*=|\|\s*(?:tstats|stats|table|eval|rex|dedup|transaction|search)\b", re.I),
    ),
    (
        "kql",
        re.compile(
            rf"^\s*{_KQL_TABLE}\s*(?:\||$)|\|\s*(?:where|project|extend|summarize|join|distinct|take|top)\b"
            r"|=~|\bhas_any\b|\bhas\s+\"",
            re.I | re.M,
        ),
    ),
]
_POWERSHELL = re.compile(r"\$_|\s-(?:eq|ne|like|match|notlike)\s|\|\s*where(?:-object)?\s*\{", re.I)

# a line that starts an unfenced query, by language
_STARTS = [
    ("spl", re.compile(r"(?:search\s+)?(?:index|sourcetype)\s*=\s*\S|\|\s*tstats\b", re.I)),
    ("eql", re.compile(rf"(?:{_EQL_CATEGORIES}\s+where\b|sequence\b(?:\s+by\b|\s+with\b|\s*$))", re.I)),
    ("kql", re.compile(rf"(?:let\s+\w+\s*=|union\b|{_KQL_TABLE}\s*(?:\||$))", re.I)),
]
_CONTINUES = re.compile(
    r"[ \t]*(?:\||and\b|or\b|not\b|where\b|by\b|on\b|with\b|[()\[\],]|let\b|[ \t]{2,}\S|\t"
    r"|\w+\s*(?:==|=~|!=|=|in~?\s*\(|has\w*|contains\w*|startswith|endswith|matches))",
    re.I,
)
_OPEN_END = re.compile(r"(?:\||\band|\bor|,|\(|\[|=)\s*$", re.I)
MIN_QUERY_CHARS = 15


def classify_query(text: str) -> str | None:
    """kql | spl | eql | sigma for a query, ``None`` for anything else (a script, a command, prose)."""
    if _POWERSHELL.search(text):
        return None
    for language, sign in _LANGUAGE_SIGNS:
        if sign.search(text):
            return language
    return None


def _fenced(article: str) -> list[Candidate]:
    found = []
    for match in _FENCE.finditer(article):
        body = match.group(2).strip()
        if not body:
            continue
        tag = match.group(1).strip().lower()
        language = _TAG_LANGUAGES.get(tag) or classify_query(body)
        if language:
            start = article.index(body, match.start(2))
            found.append(Candidate("hunt_query", body, start, start + len(body), language=language))
    return found


def _line_starts_query(line: str) -> str | None:
    for language, start in _STARTS:
        if start.match(line.strip()):
            return language
    return None


def _unfenced(article: str, taken: list[tuple[int, int]]) -> list[Candidate]:
    """Query blocks outside fences: a starting line and its continuation lines."""
    found: list[Candidate] = []
    lines = article.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    index = 0
    while index < len(lines):
        start = offsets[index]
        language = _line_starts_query(lines[index])
        if language is None or any(a <= start < b for a, b in taken):
            index += 1
            continue
        end_index = index + 1
        while end_index < len(lines) and lines[end_index].strip():
            if not (_CONTINUES.match(lines[end_index]) or _OPEN_END.search(lines[end_index - 1])):
                break
            end_index += 1
        text = article[start : offsets[end_index]].strip()
        body_start = article.index(text, start) if text else start
        multi_line = end_index - index > 1
        if len(text) >= MIN_QUERY_CHARS and (multi_line or "|" in text or " where " in text.lower() or "=" in text):
            found.append(
                Candidate(
                    "hunt_query",
                    text,
                    body_start,
                    body_start + len(text),
                    language=classify_query(text) or language,
                )
            )
        index = end_index
    return found


def _inline(article: str, taken: list[tuple[int, int]]) -> list[Candidate]:
    found = []
    for match in _INLINE.finditer(article):
        text = match.group(1).strip()
        if any(a <= match.start() < b for a, b in taken) or not _line_starts_query(text):
            continue
        language = classify_query(text)
        if language and ("|" in text or " where " in text.lower()):
            found.append(Candidate("hunt_query", text, match.start(1), match.start(1) + len(text), language=language))
    return found


def find_hunt_queries(article: str) -> list[Candidate]:
    """Every query of the article, in article order, each a verbatim span with its language."""
    fenced = _fenced(article)
    taken = [(m.start(), m.end()) for m in _FENCE.finditer(article)]
    unfenced = _unfenced(article, taken)
    inline = _inline(article, taken + [(q.start, q.end) for q in unfenced])
    return sorted(fenced + unfenced + inline, key=lambda c: c.start)
