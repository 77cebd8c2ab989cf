"""Bytes → text with the right character set (HTTP header, BOM, ``<meta charset>``, then detection)."""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _known(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None


def declared_charset(body: bytes, header_charset: str | None = None) -> str | None:
    """The charset the document declares: BOM first, then the HTTP header, then meta / XML declaration."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    if _known(header_charset):
        return _known(header_charset)
    head = body[:4096]
    for pattern in (_META_CHARSET, _XML_ENCODING):
        match = pattern.search(head)
        if match and _known(match.group(1).decode("ascii", "ignore")):
            return _known(match.group(1).decode("ascii", "ignore"))
    return None


def decode_text(body: bytes, header_charset: str | None = None) -> str:
    """Decode ``body``: declared charset, else UTF-8, else detection, else Windows-1252 (never fails)."""
    declared = declared_charset(body, header_charset)
    if declared:
        text = body.decode(declared, errors="replace")
        return text.removeprefix("\ufeff")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    encoding = guess_encoding(body[:200_000])
    return body.decode(encoding or "cp1252", errors="replace")


def guess_encoding(sample: bytes) -> str | None:
    """Detection for undeclared legacy text: among the least chaotic readings, the most coherent one.

    charset-normalizer's first choice alone is often a rare code page for short Western text
    (``mac_latin2`` for French); weighing language coherence picks ``cp1252`` there and ``cp1251`` for Russian.
    """
    matches = list(from_bytes(sample))
    if not matches:
        return None
    least_chaos = min(match.chaos for match in matches)
    plausible = [match for match in matches if match.chaos <= least_chaos + 0.1]
    best = max(plausible, key=lambda match: (round(match.coherence, 3), match.encoding in ("cp1252", "cp1251")))
    return best.encoding
