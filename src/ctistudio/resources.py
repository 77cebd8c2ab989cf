"""Files shipped inside the package (demo article, prompts, default sources)."""

from __future__ import annotations

from importlib import resources


def read_text(relative: str) -> str:
    """Text of ``ctistudio/<relative>`` from the installed package."""
    return resources.files("ctistudio").joinpath(relative).read_text(encoding="utf-8")


def demo_article() -> str:
    """The demo CTI article written for this project (Markdown with a YAML front matter)."""
    return read_text("data/demo_article.md")
