"""A compact GBNF grammar from a JSON Schema, for llama.cpp's ``grammar`` request field.

llama-server turns a ``response_format`` schema into a grammar that allows a line break and up to twenty
spaces or tabs between any two JSON tokens, and small models use all of it: a third of a Sigma answer of
the 0.5B model was indentation. The grammar written here allows at most one space after ``:`` and ``,``
and none elsewhere, so every token the model writes is content.

Only the part of JSON Schema the pipeline's schemas use is translated: ``type`` object (properties in
their order, ``required``), array (``items``, ``minItems``, ``maxItems``), string (free, or a ``pattern``
of the form ``^[^…]{0,N}$``), integer, number, boolean, null, ``enum``, ``const`` and ``anyOf``. Anything
else (``$ref``, ``oneOf``, formats, other patterns …) makes :func:`compact_grammar` return ``None`` and the
caller sends the schema as ``response_format`` as before. The language of the grammar is a subset of what
the schema allows (e.g. strings without control characters), so every answer still validates against the
schema, which the gateway checks anyway.
"""

from __future__ import annotations

import json
import re
from typing import Any

_IGNORED = {"title", "description", "default", "examples", "additionalProperties", "$schema", "strict"}
_PROSE = re.compile(r"^\^\[\^((?:\\.|[^\]\\])*)\]\{0,(\d+)\}\$$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "]": "]", "^": "^", "-": "-"}
_BASE = {
    "ws": '" "?',
    "char": r'[^"\\\x00-\x1F\x7F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    "string": '"\\"" char* "\\""',
    "integer": '"-"? ([0-9] | [1-9] [0-9]{1,15})',
    "number": 'integer ("." [0-9]+)? ([eE] [-+]? [0-9]+)?',
    "boolean": '"true" | "false"',
    "null": '"null"',
}


class Unsupported(Exception):
    """The schema uses something this translation does not know."""


def literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _class_char(char: str) -> str:
    """``char`` inside a GBNF character class, always as an escape (llama.cpp knows no ``\\^`` or ``\\-``)."""
    code = ord(char)
    return f"\\x{code:02X}" if code < 0x100 else f"\\u{code:04X}" if code < 0x10000 else f"\\U{code:08X}"


def _class_members(content: str) -> set[str]:
    """The characters the body of a regex class (``[^…]``) names; only the escapes of ``_ESCAPES`` are known."""
    members: set[str] = set()
    index = 0
    while index < len(content):
        if content[index] == "\\" and index + 1 < len(content):
            if content[index + 1] not in _ESCAPES:
                raise Unsupported(f"pattern class escape \\{content[index + 1]}")
            members.add(_ESCAPES[content[index + 1]])
            index += 2
        else:
            members.add(content[index])
            index += 1
    return members


class _Builder:
    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # rule body -> its name (the same body gets the same rule)
        self.used: set[str] = set()

    def add(self, body: str) -> str:
        """The name of the rule for ``body``."""
        return self.names.setdefault(body, f"r{len(self.names)}")

    def base(self, name: str) -> str:
        self.used.add(name)
        if name in ("string", "number"):
            self.used.add("char" if name == "string" else "integer")
        return name

    def value(self, schema: Any) -> str:
        """The name of a rule matching ``schema``."""
        if schema is True or schema == {}:
            raise Unsupported("an unconstrained value")
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r}")
        keys = set(schema) - _IGNORED
        if "const" in schema:
            return self.add(literal(json.dumps(schema["const"], ensure_ascii=False)))
        if "enum" in schema:
            values = schema["enum"]
            if not values:
                raise Unsupported("an empty enum")
            return self.add(" | ".join(literal(json.dumps(v, ensure_ascii=False)) for v in values))
        if "anyOf" in schema:
            if keys - {"anyOf"}:
                raise Unsupported("anyOf beside other keywords")
            return self.add(" | ".join(self.value(branch) for branch in schema["anyOf"]))
        kind = schema.get("type")
        if kind == "object":
            return self._object(schema)
        if kind == "array":
            return self._array(schema)
        if kind == "string":
            return self._string(schema)
        if kind in ("integer", "number", "boolean", "null") and keys == {"type"}:
            return self.base(kind)
        raise Unsupported(f"keywords {sorted(keys)}")

    def _string(self, schema: dict[str, Any]) -> str:
        keys = set(schema) - _IGNORED - {"type"}
        if not keys:
            return self.base("string")
        match = _PROSE.match(schema["pattern"]) if keys == {"pattern"} else None
        if match is None:
            raise Unsupported(f"string keywords {sorted(keys)}")
        chars = "".join(_class_char(c) for c in sorted({'"', "\\", *_class_members(match.group(1))}))
        return self.add(f'"\\"" [^{chars}\\x00-\\x1F\\x7F]{{0,{match.group(2)}}} "\\""')

    def _array(self, schema: dict[str, Any]) -> str:
        keys = set(schema) - _IGNORED - {"type", "items", "minItems", "maxItems"}
        if keys or "items" not in schema:
            raise Unsupported(f"array keywords {sorted(keys) or ['no items']}")
        item = self.value(schema["items"])
        least = int(schema.get("minItems", 0))
        most = schema.get("maxItems")
        if most is not None and int(most) < least:
            raise Unsupported("maxItems below minItems")
        more = f"{{{max(0, least - 1)},}}" if most is None else f"{{{max(0, least - 1)},{int(most) - 1}}}"
        if most is not None and int(most) == 0:
            return self.add('"[" "]"')
        body = f'"[" {item} ("," {self.base("ws")} {item}){more} "]"'
        if least == 0:
            body = f'"[" "]" | {body}'
        return self.add(body)

    def _object(self, schema: dict[str, Any]) -> str:
        keys = set(schema) - _IGNORED - {"type", "properties", "required"}
        if keys or schema.get("additionalProperties") not in (None, False):
            raise Unsupported(f"object keywords {sorted(keys) or ['additionalProperties']}")
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        if required - set(properties):
            raise Unsupported("a required property that is not listed")
        ws = self.base("ws")
        pairs = [
            (name in required, f'{literal(json.dumps(name, ensure_ascii=False))} ":" {ws} {self.value(sub)}')
            for name, sub in properties.items()
        ]
        # tail(i, first): properties i.. in order, each optional one present or not; a comma before each
        # property but the first one written.
        tails: dict[tuple[int, bool], str] = {}

        def tail(index: int, first: bool) -> str:
            if index == len(pairs):
                return '""'
            if (index, first) in tails:
                return tails[(index, first)]
            is_required, pair = pairs[index]
            comma = "" if first else f'"," {ws} '
            present = f"{comma}{pair} {tail(index + 1, False)}"
            body = present if is_required else f"{present} | {tail(index + 1, first)}"
            tails[(index, first)] = self.add(f"({body})")
            return tails[(index, first)]

        return self.add(f'"{{" {tail(0, True)} "}}"')

    def grammar(self, root: str) -> str:
        lines = [f"root ::= {root}"]
        lines += [f"{name} ::= {body}" for body, name in self.names.items()]
        lines += [f"{name} ::= {_BASE[name]}" for name in _BASE if name in self.used]
        return "\n".join(lines) + "\n"


def compact_grammar(schema: dict[str, Any]) -> str | None:
    """The GBNF grammar of ``schema`` without optional whitespace; ``None`` when the schema uses something
    this translation does not cover (send it as ``response_format`` then)."""
    builder = _Builder()
    try:
        root = builder.value(schema)
    except (Unsupported, RecursionError, TypeError, ValueError):
        return None
    return builder.grammar(root)
