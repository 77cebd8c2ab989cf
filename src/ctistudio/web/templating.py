"""Jinja2 filters. Autoescape is on; the only filter that returns markup escapes every piece of text first.

Article text is untrusted (it comes from the web): it is never marked safe as a whole. Highlighting
observables' evidence splits the text at the evidence spans, escapes each slice and wraps the spans in
``<mark>`` — so the only tags in the output are the ones this module writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment
from markupsafe import Markup, escape


def evidence_spans(text: str, quotes: Iterable[tuple[str, str]]) -> list[tuple[int, int, str]]:
    """``(start, end, label)`` of each quote's first occurrence in ``text`` (exact, else case-insensitive).

    Overlapping spans are merged (the first label wins); quotes not found are skipped.
    """
    lowered = text.lower()
    found: list[tuple[int, int, str]] = []
    for quote, label in quotes:
        quote = (quote or "").strip()
        if len(quote) < 3:
            continue
        start = text.find(quote)
        if start < 0:
            start = lowered.find(quote.lower())
        if start >= 0:
            found.append((start, start + len(quote), label))
    found.sort()
    merged: list[tuple[int, int, str]] = []
    for start, end, label in found:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2])
        else:
            merged.append((start, end, label))
    return merged


def highlight(text: str | None, quotes: Iterable[tuple[str, str]] = ()) -> Markup:
    """``text`` escaped, with each evidence quote wrapped in ``<mark class="evidence" title=label>``."""
    text = text or ""
    out: list[str] = []
    position = 0
    for start, end, label in evidence_spans(text, quotes):
        out.append(str(escape(text[position:start])))
        out.append(f'<mark class="evidence" title="{escape(label)}">{escape(text[start:end])}</mark>')
        position = end
    out.append(str(escape(text[position:])))
    return Markup("".join(out))


def when(value: Any) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM`` (accepts datetimes, ISO strings and epoch seconds)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.strftime("%Y-%m-%d %H:%M")


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def query_with(model: Any, **changes: Any) -> str:
    """The query string of a filter model with some values changed (for pager links)."""
    data = {k: v for k, v in model.model_dump(exclude_none=True).items() if v != ""}
    data.update(changes)
    return urlencode(data)


def web_url(value: Any) -> str | None:
    """``value`` when it is an http(s) URL a page may link to, else ``None`` (``javascript:``, ``data:`` …);
    stored articles never carry another kind, this keeps rows stored before that rule from becoming links."""
    from ctistudio.ingest.intake import web_url_or_none

    return web_url_or_none(str(value) if value else None)


def install_filters(env: Environment) -> None:
    env.globals["query_with"] = query_with
    env.filters["highlight"] = highlight
    env.filters["web_url"] = web_url
    env.filters["when"] = when
    env.filters["pretty_json"] = pretty_json
