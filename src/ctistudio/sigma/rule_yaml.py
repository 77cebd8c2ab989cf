"""Reading and writing Sigma rule YAML the way the Sigma services need it.

- Dates stay strings (``2024-13-45`` becomes a precise rule issue, not a crash inside the YAML library).
- A key given twice in one mapping is a YAML error with its line (the Sigma spec forbids it; PyYAML would
  silently keep the last one).
- :func:`key_lines` maps key paths (``("detection", "selection")``) to line numbers, so that issues found
  on the parsed rule can point at a line of the text the model or the user wrote.
- :func:`dump_rule` writes a rule with the keys in the conventional Sigma order.
- Every read goes through :mod:`ctistudio.safe_yaml` with :data:`RULE_LIMITS`: an alias bomb, a rule of
  megabytes or nesting 64 deep is refused (:class:`~ctistudio.safe_yaml.YamlRefused`, a ``yaml.YAMLError``)
  before anything expands it. SigmaHQ's largest rule expands to ~4,500 nodes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from ctistudio.safe_yaml import YamlLimits, check_yaml, compose_yaml, load_yaml_documents

KeyPath = tuple[str | int, ...]

# The conventional order of Sigma rule keys (SigmaHQ's convention); unknown keys follow in their own order.
SIGMA_KEY_ORDER = (
    "title",
    "id",
    "related",
    "name",
    "status",
    "description",
    "references",
    "author",
    "date",
    "modified",
    "tags",
    "logsource",
    "detection",
    "fields",
    "falsepositives",
    "level",
)

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
RULE_LIMITS = YamlLimits(max_bytes=1024 * 1024, max_nodes=50_000, max_depth=64, max_seconds=2.0)


class RuleLoader(_BaseLoader):
    """Safe YAML loader: no timestamp conversion, duplicate keys rejected with their line."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: let the base constructor report it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (each key may appear only once in a mapping)",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_documents(text: str) -> list[Any]:
    """Every YAML document in ``text`` (raises :class:`yaml.YAMLError` with a mark on bad syntax, and
    :class:`~ctistudio.safe_yaml.YamlRefused` over :data:`RULE_LIMITS`)."""
    return load_yaml_documents(text, limits=RULE_LIMITS, loader=RuleLoader, what="the rule")


def check_rule_text(text: str) -> None:
    """Refuse (:class:`~ctistudio.safe_yaml.YamlRefused`) a rule text over :data:`RULE_LIMITS` before any
    work is done on it; syntax errors are left to the validator, which reports them with their line."""
    check_yaml(text, limits=RULE_LIMITS, loader=RuleLoader, what="the rule")


def error_position(exc: yaml.YAMLError) -> tuple[int | None, int | None]:
    """1-based (line, column) of a YAML error, when the parser reported one."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return None, None
    return mark.line + 1, mark.column + 1


def error_message(exc: yaml.YAMLError) -> str:
    """A one-line description of a YAML error without PyYAML's multi-line excerpt."""
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem:
        return f"{problem} ({context})" if context else str(problem)
    return str(exc).splitlines()[0]


def key_lines(text: str) -> dict[KeyPath, int]:
    """Line number (1-based) of each key and list item of the first document; empty if it does not parse."""
    try:
        node = compose_yaml(text, limits=RULE_LIMITS, loader=RuleLoader, what="the rule")
    except yaml.YAMLError:
        return {}
    out: dict[KeyPath, int] = {}
    if node is not None:
        for path, line in _walk(node, ()):
            out.setdefault(path, line)
    return out


def _walk(node: yaml.Node, path: KeyPath) -> Iterator[tuple[KeyPath, int]]:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.start_mark.line)
            yield (*path, key), key_node.start_mark.line + 1
            yield from _walk(value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield (*path, index), item.start_mark.line + 1
            yield from _walk(item, (*path, index))


def ordered_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """The rule's keys in :data:`SIGMA_KEY_ORDER`, unknown keys after them in their original order."""
    out = {key: rule[key] for key in SIGMA_KEY_ORDER if key in rule}
    out.update({key: value for key, value in rule.items() if key not in out})
    return out


# libyaml's emitter where PyYAML was built with it: ~8x faster than the pure-Python one, same YAML (long strings
# may wrap at other points). Dumping is on the path of every validation and every generated rule.
_DUMPER: type[Any] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_rule(rule: Mapping[str, Any]) -> str:
    """YAML text of a rule, keys in the conventional order, block style, Unicode kept."""
    return yaml.dump(
        ordered_rule(rule), Dumper=_DUMPER, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120
    )
