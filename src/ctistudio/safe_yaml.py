"""The one way ctistudio reads YAML that a user or a model wrote: bounded in size, depth, nodes and time.

PyYAML's safe loaders refuse code-running tags but not *alias bombs*: ``&a [x, x]`` / ``&b [*a, *a]`` …
nine levels deep is ~480 bytes that expand to 387 million nodes. Loading one is cheap (an alias is the
same Python object), but everything that walks the result afterwards — ``str()``, pySigma, a key-line
map — expands it and takes minutes and gigabytes. So before anything is built, one pass over the parser's
events (libyaml's parser is a state machine, not recursive) measures:

- the size of the text (:attr:`YamlLimits.max_bytes`),
- the nesting depth (:attr:`YamlLimits.max_depth`; deep nesting would overflow the recursive builder),
- the number of nodes *after alias expansion* (:attr:`YamlLimits.max_nodes`): an alias costs the full
  size of the node it names, so a bomb is refused at its first expensive alias,
- the time spent (:attr:`YamlLimits.max_seconds`), checked as events are read.

Anything over a limit raises :class:`YamlRefused` — a :class:`yaml.YAMLError` (so callers that already
report YAML errors report it too) and an :class:`~ctistudio.errors.InvalidInput` (so the web answers 400)
whose message says which limit was hit. Only then is the text composed and constructed, with the
construction errors PyYAML lets escape as plain ``ValueError`` (an integer of 5,000 digits) turned into
:class:`YamlRefused` as well. Callers pass their own loader class (e.g. the Sigma rule loader that keeps
dates as text); the default is libyaml's safe loader.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import yaml

from ctistudio.errors import InvalidInput

SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlLimits:
    """What one YAML text may cost. The defaults fit any Sigma rule, front matter or sources.yaml."""

    max_bytes: int = 2 * 1024 * 1024
    max_nodes: int = 200_000  # after alias expansion
    max_depth: int = 64
    max_seconds: float = 2.0


DEFAULT_LIMITS = YamlLimits()
# Front matter is a few lines of metadata: a bomb or a megabyte of YAML there is refused, not expanded.
FRONT_MATTER_LIMITS = YamlLimits(max_bytes=64 * 1024, max_nodes=5_000, max_depth=16, max_seconds=1.0)
_CLOCK_EVERY = 2048  # events between two looks at the clock


class YamlRefused(InvalidInput, yaml.YAMLError):
    """A YAML text over a limit (size, depth, expanded nodes, time) or with a value PyYAML cannot build."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.problem = message  # what rule_yaml.error_message and the validator's issue show

    def __str__(self) -> str:
        return self.message


def _refuse(what: str, message: str) -> YamlRefused:
    return YamlRefused(
        f"{what} refused: {message}",
        fix="Write the YAML out plainly (no nested anchors/aliases that multiply, no deep nesting) and keep it small.",
    )


class _Budget:
    """Counts expanded nodes and depth while the parser's events stream past."""

    def __init__(self, limits: YamlLimits, what: str) -> None:
        self.limits = limits
        self.what = what
        self.stack: list[list[Any]] = []  # [anchor, expanded size so far] per open collection
        self.anchors: dict[str, int] = {}
        self.total = 0

    def add(self, size: int) -> None:
        if self.stack:
            self.stack[-1][1] += size
            current = self.stack[-1][1]
        else:
            self.total += size
            current = self.total
        if current > self.limits.max_nodes or self.total > self.limits.max_nodes:
            raise _refuse(
                self.what,
                f"it expands to more than {self.limits.max_nodes:,} nodes (aliases count as the nodes they repeat)",
            )

    def event(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                self.anchors[event.anchor] = 1
            self.add(1)
        elif isinstance(event, yaml.AliasEvent):
            self.add(self.anchors.get(event.anchor or "", 1))  # an unknown alias: the composer reports it
        elif isinstance(event, yaml.CollectionStartEvent):
            self.stack.append([event.anchor, 1])
            if len(self.stack) > self.limits.max_depth:
                raise _refuse(self.what, f"it nests deeper than {self.limits.max_depth} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, size = self.stack.pop()
            if anchor:
                self.anchors[anchor] = size
            self.add(size)


def check_yaml(text: str, *, limits: YamlLimits = DEFAULT_LIMITS, loader: Any = SafeLoader, what: str = "YAML") -> None:
    """Raise :class:`YamlRefused` when ``text`` is over ``limits`` (syntax errors are left to the loader)."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > limits.max_bytes:
        raise _refuse(what, f"{size:,} bytes is over the limit of {limits.max_bytes:,} bytes")
    budget = _Budget(limits, what)
    deadline = time.monotonic() + limits.max_seconds
    parser = loader(text)
    try:
        count = 0
        while parser.check_event():
            budget.event(parser.get_event())
            count += 1
            if count % _CLOCK_EVERY == 0 and time.monotonic() > deadline:
                raise _refuse(what, f"reading it took longer than {limits.max_seconds:g} s")
    except yaml.YAMLError as exc:
        if isinstance(exc, YamlRefused):
            raise
        return  # a syntax error: the loader reports it with its line and column
    finally:
        parser.dispose()


def _build(text: str, loader: Any, what: str, build: Any) -> Any:
    instance = loader(text)
    try:
        return build(instance)
    except (ValueError, OverflowError, RecursionError) as exc:
        if isinstance(exc, yaml.YAMLError):
            raise
        raise _refuse(what, f"a value could not be read ({type(exc).__name__}: {exc})") from exc
    finally:
        instance.dispose()


def _all_documents(instance: Any) -> list[Any]:
    out = []
    while instance.check_data():
        out.append(instance.get_data())
    return out


def load_yaml(text: str, *, limits: YamlLimits = DEFAULT_LIMITS, loader: Any = SafeLoader, what: str = "YAML") -> Any:
    """The single document in ``text`` (``None`` for an empty text), within ``limits``."""
    check_yaml(text, limits=limits, loader=loader, what=what)
    return _build(text, loader, what, lambda instance: instance.get_single_data())


def load_yaml_documents(
    text: str, *, limits: YamlLimits = DEFAULT_LIMITS, loader: Any = SafeLoader, what: str = "YAML"
) -> list[Any]:
    """Every document in ``text`` (separated by ``---``), within ``limits``."""
    check_yaml(text, limits=limits, loader=loader, what=what)
    return _build(text, loader, what, _all_documents)


def compose_yaml(
    text: str, *, limits: YamlLimits = DEFAULT_LIMITS, loader: Any = SafeLoader, what: str = "YAML"
) -> yaml.Node | None:
    """The node tree of the single document in ``text`` (for line numbers), within ``limits``."""
    check_yaml(text, limits=limits, loader=loader, what=what)
    return _build(text, loader, what, lambda instance: instance.get_single_node())
