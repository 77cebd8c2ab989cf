"""``sources.yaml``: the CTI sources to poll, validated, with per-source options.

The packaged default (``ctistudio/data/sources.yaml``) is used unless ``CTISTUDIO_SOURCES_FILE`` points at
another file. Format::

    sources:
      - id: thedfirreport              # unique, letters/digits/_/-
        name: The DFIR Report
        url: https://thedfirreport.com/
        rss_url: https://thedfirreport.com/feed/
        check_frequency: 3600          # seconds between checks (min 60)
        active: true
        config:                        # all optional, see SourceOptions
          allowed_domains: [thedfirreport.com]
          post_url_regex: '^https://thedfirreport\\.com/\\d{4}/'
          min_content_length: 2000
          title_filter_keywords: []    # keep only entries whose title has one of these (empty: keep all)
          title_exclude_keywords: [webinar]
          rss_only: false              # true: take the text from the feed, never fetch the page
          extract: {content_selector: "article .entry-content", jsonld: true}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ctistudio.config import Settings
from ctistudio.errors import ConfigurationError
from ctistudio.resources import read_text
from ctistudio.safe_yaml import load_yaml
from ctistudio.store.sources import SourceDefinition

DEFAULT_SOURCES = "data/sources.yaml"


class ExtractionHints(BaseModel):
    """Where the article is on a source's pages, when generic extraction gets it wrong."""

    model_config = ConfigDict(extra="forbid")

    content_selector: str | None = None  # simple CSS: tag, #id, .class, descendants ("article .post-body")
    title_selector: str | None = None
    jsonld: bool = True  # take title/author/date from schema.org JSON-LD when the page has it


class SourceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_domains: list[str] = Field(default_factory=list)  # entry links outside these are skipped
    post_url_regex: str | None = None  # entry links must match (e.g. only /blog/ posts)
    min_content_length: int = Field(800, ge=0)  # characters of clean text below which an entry is skipped
    title_filter_keywords: list[str] = Field(default_factory=list)
    title_exclude_keywords: list[str] = Field(default_factory=list)
    rss_only: bool = False
    respect_robots: bool = True
    max_entries: int = Field(100, ge=1, le=1000)  # newest feed entries looked at per check
    extract: ExtractionHints = Field(default_factory=ExtractionHints)

    @field_validator("post_url_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @field_validator("allowed_domains")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [d.lower().strip().lstrip(".") for d in value if d.strip()]


class SourceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
    name: str = Field(min_length=1, max_length=300)
    url: str = Field(pattern=r"^https?://")
    rss_url: str | None = Field(None, pattern=r"^https?://")
    check_frequency: int = Field(3600, ge=60)
    active: bool = True
    config: SourceOptions = Field(default_factory=SourceOptions)

    def definition(self) -> SourceDefinition:
        return SourceDefinition(
            id=self.id,
            name=self.name,
            url=self.url,
            rss_url=self.rss_url,
            check_frequency=self.check_frequency,
            active=self.active,
            config=self.config.model_dump(mode="json"),
        )


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    sources: list[SourceEntry]


def source_options(config: dict[str, Any] | None) -> SourceOptions:
    """The options stored on a source row, validated (unknown keys from older files are dropped)."""
    known = {k: v for k, v in (config or {}).items() if k in SourceOptions.model_fields}
    return SourceOptions.model_validate(known)


def parse_sources(text: str, origin: str) -> list[SourceDefinition]:
    """Validate sources.yaml content; errors name the entry and field and say how to fix them."""
    try:
        raw = load_yaml(text, what=origin)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{origin} is not valid YAML: {exc}", fix="Fix the YAML syntax.") from exc
    try:
        parsed = SourcesFile.model_validate(raw if isinstance(raw, dict) else {"sources": raw})
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(part) for part in error["loc"])
            problems.append(f"{where}: {error['msg']}")
        raise ConfigurationError(
            f"{origin}: " + "; ".join(problems),
            fix="Correct the entry (see docs/store-ingest.md for the sources.yaml format).",
        ) from exc
    ids = [entry.id for entry in parsed.sources]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConfigurationError(f"{origin}: duplicate source ids {duplicated}", fix="Give every source its own id.")
    return [entry.definition() for entry in parsed.sources]


def load_sources(settings: Settings | None = None, path: Path | None = None) -> list[SourceDefinition]:
    """Sources from ``path``, else ``CTISTUDIO_SOURCES_FILE``, else the packaged default list."""
    chosen = path or (settings.sources_file if settings else None)
    if chosen is None:
        return parse_sources(read_text(DEFAULT_SOURCES), "the packaged sources.yaml")
    if not chosen.is_file():
        raise ConfigurationError(
            f"sources file {chosen} does not exist",
            fix="Set CTISTUDIO_SOURCES_FILE to an existing sources.yaml, or unset it to use the packaged list.",
        )
    return parse_sources(chosen.read_text(encoding="utf-8"), str(chosen))
