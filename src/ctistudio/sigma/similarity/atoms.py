"""Canonical atoms: ``field|modifiers|value`` strings that compare equal when two detections mean the same.

Normalisation, applied identically to the corpus and to the rule being checked:

- **Field names** are case-folded and mapped through :data:`FIELD_ALIASES` (Windows Security event names,
  Microsoft Defender and ECS names that models often write, to the Sysmon/Sigma taxonomy name).
- **Match modifiers become wildcards**: ``contains: x`` ≡ ``'*x*'``, ``startswith: x`` ≡ ``'x*'``,
  ``endswith: x`` ≡ ``'*x'``; runs of ``*`` collapse to one. So ``Image|endswith: '\\cmd.exe'`` and
  ``Image: '*\\cmd.exe'`` are the same atom.
- **Values** are case-folded (Sigma matching is case-insensitive; ``cased`` is dropped), Sigma escapes are
  decoded (``\\*`` is a literal star), numbers and booleans are written as text, keywords (values without a
  field) are full-text matches, i.e. ``*value*`` on the empty field name.
- **Other modifiers** stay in the atom in their order (``base64offset``, ``windash``, ``cidr``, ``re`` with its
  flags, ``gt``…); ``wide`` is written ``utf16le``. Regular expressions keep their case.
- **Lists** are an OR of their values (a :class:`Literal` holds the set); with ``|all`` they are an AND.

A :class:`Literal` is one field test of a detection: ``key`` (``field|modifiers``), a set of values (OR) and
whether it is negated. Negated literals always hold one value (``not (a or b)`` is ``not a and not b``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

# Field names of other taxonomies → the Sigma (Sysmon) name, all lower case. Keep this table small and
# certain: a wrong alias makes unrelated rules look alike.
FIELD_ALIASES: dict[str, str] = {
    # Windows Security log (4688 process creation, 4656/4663 object access)
    "newprocessname": "image",
    "processname": "image",
    "parentprocessname": "parentimage",
    # Microsoft Defender for Endpoint
    "processcommandline": "commandline",
    "initiatingprocesscommandline": "parentcommandline",
    # Elastic Common Schema
    "process.executable": "image",
    "process.command_line": "commandline",
    "process.parent.executable": "parentimage",
    "process.parent.command_line": "parentcommandline",
    "process.pe.original_file_name": "originalfilename",
    "file.path": "targetfilename",
    "registry.path": "targetobject",
    "dns.question.name": "queryname",
    "destination.ip": "destinationip",
    "destination.port": "destinationport",
    "source.ip": "sourceip",
    "user.name": "user",
}
MATCH_MODIFIERS = ("contains", "startswith", "endswith")
_DROPPED_MODIFIERS = {"cased", "all"}
_MODIFIER_ALIASES = {"wide": "utf16le", "ignorecase": "i", "multiline": "m", "dotall": "s"}
_REGEX_FLAGS = {"i", "m", "s"}
NULL = "<null>"
KEYWORD_FIELD = ""

_WILDCARD = object()
_SINGLE = object()


class Literal(NamedTuple):
    """One field test: ``key`` is ``field|modifiers``; true when the field matches any of ``values``."""

    negated: bool
    key: str
    values: frozenset[str]

    def atoms(self) -> list[str]:
        """The literal's atoms: ``field|modifiers|value`` (prefixed ``!`` when negated)."""
        prefix = "!" if self.negated else ""
        return [f"{prefix}{self.key}|{value}" for value in sorted(self.values)]

    def render(self) -> str:
        values = ",".join(sorted(self.values))
        return f"{'!' if self.negated else ''}{self.key}={values}"


def canonical_field(name: str) -> str:
    """Case-folded field name with :data:`FIELD_ALIASES` applied."""
    lowered = name.strip().lower()
    return FIELD_ALIASES.get(lowered, lowered)


def split_key(key: str) -> tuple[str, list[str]]:
    """``Image|endswith`` → (``image``, [``endswith``])."""
    field, *modifiers = str(key).split("|")
    return canonical_field(field), [m.strip().lower() for m in modifiers if m.strip()]


def _sigma_tokens(text: str) -> list[Any]:
    """Decode Sigma escaping: ``\\*``, ``\\?``, ``\\\\`` are literals; bare ``*`` and ``?`` are wildcards."""
    out: list[Any] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in "*?\\":
            out.append(text[i + 1])
            i += 2
            continue
        out.append(_WILDCARD if char == "*" else _SINGLE if char == "?" else char)
        i += 1
    return out


def _render_tokens(tokens: list[Any]) -> str:
    out: list[str] = []
    for index, token in enumerate(tokens):
        if token is _WILDCARD:
            if out and out[-1] == "*" and tokens[index - 1] is _WILDCARD:
                continue  # collapse ** to *
            out.append("*")
        elif token is _SINGLE:
            out.append("?")
        elif token in ("*", "?"):
            out.append("\\" + token)
        elif token == "\\" and index + 1 < len(tokens) and not isinstance(tokens[index + 1], str):
            out.append("\\\\")  # a literal backslash right before a wildcard must stay escaped
        elif token == "\\" and index + 1 < len(tokens) and tokens[index + 1] in ("*", "?", "\\"):
            out.append("\\\\")
        else:
            out.append(token.lower())
    return "".join(out)


def normalise_value(value: Any, match: str | None = None, *, regex: bool = False) -> str:
    """Canonical text of one value under a match modifier (``contains``/``startswith``/``endswith``/None)."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else str(value)
    if regex:
        return text
    tokens = _sigma_tokens(text)
    if match in ("contains", "endswith") and (not tokens or tokens[0] is not _WILDCARD):
        tokens.insert(0, _WILDCARD)
    if len(tokens) > 2 and tokens[0] is _WILDCARD and tokens[1] in ("\\", "/") and tokens[1] in tokens[2:]:
        # "*\\WDigest\\UseLogonCredential" and "*WDigest\\UseLogonCredential" match the same paths in practice:
        # before a value of several path segments, a leading separator adds nothing ("\\cmd.exe" keeps it:
        # there it is what tells cmd.exe from xcmd.exe)
        del tokens[1]
    if match in ("contains", "startswith") and (not tokens or tokens[-1] is not _WILDCARD):
        tokens.append(_WILDCARD)
    return _render_tokens(tokens)


def field_literals(key: str, value: Any) -> list[Literal] | Literal:
    """The literal(s) of one ``field|modifiers: value`` entry: one literal, or a list to AND (``|all``)."""
    field, modifiers = split_key(key)
    match = next((m for m in modifiers if m in MATCH_MODIFIERS), None)
    regex = "re" in modifiers
    kept = [_MODIFIER_ALIASES.get(m, m) for m in modifiers if m not in MATCH_MODIFIERS and m not in _DROPPED_MODIFIERS]
    if regex:
        flags = sorted(m for m in kept if m in _REGEX_FLAGS)
        kept = [m for m in kept if m not in _REGEX_FLAGS] + flags
    if "fieldref" in kept:
        value = [canonical_field(str(v)) for v in (value if isinstance(value, list) else [value])]
    full_key = field + "|" + "|".join(kept)
    values = value if isinstance(value, list) else [value]
    normalised = [normalise_value(v, match, regex=regex and "i" not in kept) for v in values]
    if regex and "i" in kept:
        normalised = [v.lower() for v in normalised]
    if "all" in modifiers and len(normalised) > 1:
        return [Literal(False, full_key, frozenset([v])) for v in normalised]
    return Literal(False, full_key, frozenset(normalised))


def keyword_literal(values: Iterable[Any]) -> Literal:
    """A keyword search (values without a field): a full-text ``contains`` on the empty field name."""
    return Literal(False, KEYWORD_FIELD + "|", frozenset(normalise_value(v, "contains") for v in values))


def detection_node(body: Any) -> tuple[Any, ...]:
    """Boolean tree of one search identifier: a mapping is an AND, a list an OR (of mappings or keywords)."""
    if isinstance(body, Mapping):
        parts: list[tuple[Any, ...]] = []
        for key, value in body.items():
            result = field_literals(str(key), value)
            if isinstance(result, list):
                parts.extend(("lit", lit) for lit in result)
            else:
                parts.append(("lit", result))
        return parts[0] if len(parts) == 1 else ("and", tuple(parts))
    if isinstance(body, list):
        maps = [item for item in body if isinstance(item, Mapping)]
        scalars = [item for item in body if not isinstance(item, Mapping | list)]
        nodes = [detection_node(item) for item in maps]
        if scalars:
            nodes.append(("lit", keyword_literal(scalars)))
        if not nodes:
            return ("lit", Literal(False, KEYWORD_FIELD + "|", frozenset()))
        return nodes[0] if len(nodes) == 1 else ("or", tuple(nodes))
    return ("lit", keyword_literal([body]))


_CATEGORY_SPELLING = re.compile(r"[\s-]+")


def logsource_class(logsource: Any) -> tuple[str, str, str]:
    """(product, category, service), lower case, ``-``/spaces as ``_`` in categories; '' where absent."""
    if not isinstance(logsource, Mapping):
        return ("", "", "")

    def part(name: str) -> str:
        value = logsource.get(name)
        return str(value).strip().lower() if value is not None else ""

    return part("product"), _CATEGORY_SPELLING.sub("_", part("category")), part("service")


# -- near-match features and wildcard implication ----------------------------------------------------
FEATURE_PREFIX = "~"
_MIN_FEATURE_CHARS = 3
_PIECE_TRIM = " \t\"'\\/"


def _pieces(value: str) -> list[str]:
    """The literal runs (unescaped) of a canonical value between its ``*`` and ``?`` wildcards."""
    pieces: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value) and value[i + 1] in "\\*?":
            current.append(value[i + 1])
            i += 2
            continue
        if char in "*?":
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    pieces.append("".join(current))
    return pieces


def literal_features(literal: Literal) -> list[str]:
    """Near-match features of a positive, non-regex literal: ``~field|modifiers|text`` per literal run.

    ``*urlcache *`` and ``*urlcache*`` differ as atoms but share the feature ``~commandline||urlcache``; a
    path's run also yields its last component (``\\windows\\certutil.exe`` → ``certutil.exe``).
    """
    if literal.negated or "|re" in literal.key:
        return []
    out: list[str] = []
    for value in literal.values:
        for piece in _pieces(value):
            text = piece.strip(_PIECE_TRIM)
            candidates = {text, re.split(r"[\\/]", text)[-1]}
            out.extend(f"{FEATURE_PREFIX}{literal.key}|{c}" for c in sorted(candidates) if len(c) >= _MIN_FEATURE_CHARS)
    return sorted(set(out))


def value_implies(a: str, b: str) -> bool:
    """Every string matching pattern ``a`` also matches ``b`` (simple forms of b: ``*x*``, ``*x``, ``x*``)."""
    if a == b or b == "*":
        return True
    pieces_a, pieces_b = _pieces(a), _pieces(b)
    if "?" in b.replace("\\?", ""):
        return False
    inner = [p for p in pieces_b if p]
    if len(inner) != 1 or len(pieces_b) > 3:
        return False
    needle = inner[0]
    if pieces_b == ["", needle, ""]:  # *x*: x inside one literal run of a
        return any(needle in piece for piece in pieces_a)
    if pieces_b == ["", needle]:  # *x: a ends with a literal run ending in x
        return pieces_a[-1].endswith(needle)
    if pieces_b == [needle, ""]:  # x*: a starts with a literal run starting with x
        return pieces_a[0].startswith(needle)
    return False
