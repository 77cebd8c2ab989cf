"""Prompts live in versioned files: ``pipeline/prompts/<name>.md`` with a small front matter.

    ---
    name: rank
    version: 3
    ---
    You are …

A run records ``name@version#hash`` for every prompt it used: the version is the author's intent, the
hash (of the body) catches an edit made without bumping the version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import yaml

from ctistudio.errors import ConfigurationError
from ctistudio.resources import read_text


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    body: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.body.encode("utf-8")).hexdigest()[:10]

    @property
    def ref(self) -> str:
        """``rank@3#a1b2c3d4e5``: what runs store."""
        return f"{self.name}@{self.version}#{self.digest}"


@cache
def load_prompt(name: str) -> Prompt:
    """The packaged prompt ``name`` (cached: prompts are part of the installed code)."""
    try:
        raw = read_text(f"pipeline/prompts/{name}.md")
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"prompt file pipeline/prompts/{name}.md is missing", fix="Reinstall ctistudio (`./studio start`)."
        ) from exc
    if not raw.startswith("---\n"):
        raise ConfigurationError(f"prompt {name} has no front matter", fix="Start the file with a --- block.")
    _, header, body = raw.split("---\n", 2)
    meta = yaml.safe_load(header) or {}
    if meta.get("name") != name or not isinstance(meta.get("version"), int):
        raise ConfigurationError(
            f"prompt {name}: front matter needs `name: {name}` and an integer `version`",
            fix=f"Edit src/ctistudio/pipeline/prompts/{name}.md.",
        )
    return Prompt(name=name, version=meta["version"], body=body.strip() + "\n")


def prompt_versions(names: list[str]) -> dict[str, str]:
    """``{name: ref}`` for the prompts a run uses."""
    return {name: load_prompt(name).ref for name in names}
