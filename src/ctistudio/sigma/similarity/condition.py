"""Parse a Sigma condition into a boolean tree over search identifiers.

Grammar (keywords are case-insensitive; ``and`` binds tighter than ``or``; ``not`` tightest)::

    expr     := and_expr ("or" and_expr)*
    and_expr := unary ("and" unary)*
    unary    := "not" unary | "(" expr ")" | quantified | IDENTIFIER
    quantified := ("1" | "any" | "all" | N) "of" (PATTERN | "them")

``1 of selection_*`` becomes an ``or`` over the matching identifiers, ``all of them`` an ``and`` over all of
them (``them`` leaves out identifiers starting with ``_``, as the Sigma specification says), ``2 of x*`` an
``or`` of the ``and`` of every pair. The legacy aggregation suffix (``… | count() by x > 5``) is cut off and
reported through :attr:`ConditionTree.notes`. The tree's leaves are identifier names; the caller
substitutes each identifier's detection.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

Node = tuple[Any, ...]  # ("ref", name) | ("and", (nodes…)) | ("or", (nodes…)) | ("not", node)

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")
_KEYWORDS = {"and", "or", "not", "of"}
_MAX_COMBINATIONS = 64


class ConditionSyntaxError(ValueError):
    """The condition does not follow the Sigma grammar; ``position`` is the character offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at character {position})")
        self.position = position


@dataclass
class ConditionTree:
    """The parsed condition and what was left out of it."""

    root: Node
    notes: list[str] = field(default_factory=list)


def _tokens(text: str) -> list[tuple[str, int]]:
    return [(match.group(1), match.start(1)) for match in _TOKEN.finditer(text)]


class _Parser:
    def __init__(self, text: str, identifiers: list[str]) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.identifiers = identifiers
        self.text = text

    def peek(self) -> str | None:
        return self.tokens[self.pos][0].lower() if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, int]:
        if self.pos >= len(self.tokens):
            raise ConditionSyntaxError("unexpected end of condition", len(self.text))
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Node:
        node = self.expr()
        if self.pos != len(self.tokens):
            token, at = self.tokens[self.pos]
            raise ConditionSyntaxError(f"unexpected {token!r}", at)
        return node

    def expr(self) -> Node:
        parts = [self.and_expr()]
        while self.peek() == "or":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else ("or", tuple(parts))

    def and_expr(self) -> Node:
        parts = [self.unary()]
        while self.peek() == "and":
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else ("and", tuple(parts))

    def unary(self) -> Node:
        token, at = self.take()
        lowered = token.lower()
        if lowered == "not":
            return ("not", self.unary())
        if token == "(":
            node = self.expr()
            closing, where = self.take()
            if closing != ")":
                raise ConditionSyntaxError(f"expected ')' but found {closing!r}", where)
            return node
        if self.peek() == "of":
            self.take()
            target, _ = self.take()
            return self.quantified(lowered, target, at)
        if token == ")" or lowered in _KEYWORDS:
            raise ConditionSyntaxError(f"unexpected {token!r}", at)
        if token not in self.identifiers:
            raise ConditionSyntaxError(f"search identifier {token!r} is not defined in the detection", at)
        return ("ref", token)

    def quantified(self, count: str, target: str, at: int) -> Node:
        if target.lower() == "them":
            names = [n for n in self.identifiers if not n.startswith("_")]
        else:
            names = [n for n in self.identifiers if fnmatch.fnmatchcase(n, target)]
        if not names:
            raise ConditionSyntaxError(f"{target!r} matches no search identifier", at)
        refs = tuple(("ref", n) for n in names)
        if count in ("1", "any"):
            return refs[0] if len(refs) == 1 else ("or", refs)
        if count == "all":
            return refs[0] if len(refs) == 1 else ("and", refs)
        if not count.isdigit() or int(count) < 1:
            raise ConditionSyntaxError(f"expected 1, any, all or a number before 'of', found {count!r}", at)
        size = min(int(count), len(refs))
        combos = list(itertools.islice(itertools.combinations(refs, size), _MAX_COMBINATIONS))
        options = tuple(("and", c) if len(c) > 1 else c[0] for c in combos)
        return options[0] if len(options) == 1 else ("or", options)


def parse_condition(condition: str | list[str], identifiers: list[str]) -> ConditionTree:
    """Parse one condition (or a list of them, which Sigma ORs) over the given identifiers."""
    conditions = condition if isinstance(condition, list) else [condition]
    notes: list[str] = []
    roots = []
    for text in conditions:
        if not isinstance(text, str) or not text.strip():
            raise ConditionSyntaxError("the condition is empty", 0)
        if "|" in text:
            text, aggregation = text.split("|", 1)
            notes.append(f"aggregation '|{aggregation.strip()}' ignored for similarity")
        roots.append(_Parser(text, identifiers).parse())
    root = roots[0] if len(roots) == 1 else ("or", tuple(roots))
    return ConditionTree(root, notes)
