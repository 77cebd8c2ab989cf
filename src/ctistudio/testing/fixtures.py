"""pytest plugin with fixtures that start the LLM server doubles on 127.0.0.1.

Enable it once in ``tests/conftest.py``: ``pytest_plugins = ["ctistudio.testing.fixtures"]``.

- ``lmstudio_double``: a running :class:`~ctistudio.testing.lmstudio_double.LMStudioDouble` with the
  seed's models loaded at 16,384 tokens; ``LMSTUDIO_API_URL``/``LMSTUDIO_EMBEDDING_URL`` point at it for
  the test (so ``load_settings()``, ``Gateway()`` and the CLI talk to it). Script it: ``.reply(...)``,
  ``.responder = ...``, ``.server_error()`` …
- ``openai_double`` / ``anthropic_double``: the cloud APIs, with ``OPENAI_BASE_URL``/``OPENAI_API_KEY``
  (``ANTHROPIC_…``) set.
- ``start_double``: a factory for more doubles with other options —
  ``start_double(LMStudioDouble, models={"m": 4096}, latency=0.2)`` — stopped after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from ctistudio.testing.cloud_doubles import AnthropicDouble, OpenAIDouble
from ctistudio.testing.http_double import HttpDouble
from ctistudio.testing.lmstudio_double import LMStudioDouble

D = TypeVar("D", bound=HttpDouble)


@pytest.fixture
def start_double() -> Iterator[Callable[..., Any]]:
    started: list[HttpDouble] = []

    def start(kind: type[D] = LMStudioDouble, **options: Any) -> D:  # type: ignore[assignment]
        double = kind(**options)
        double.start()
        started.append(double)
        return double

    yield start
    for double in reversed(started):
        double.stop()


def _point_env_at(double: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in double.env().items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def lmstudio_double(monkeypatch: pytest.MonkeyPatch) -> Iterator[LMStudioDouble]:
    with LMStudioDouble() as double:
        _point_env_at(double, monkeypatch)
        yield double


@pytest.fixture
def openai_double(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIDouble]:
    with OpenAIDouble() as double:
        _point_env_at(double, monkeypatch)
        yield double


@pytest.fixture
def anthropic_double(monkeypatch: pytest.MonkeyPatch) -> Iterator[AnthropicDouble]:
    with AnthropicDouble() as double:
        _point_env_at(double, monkeypatch)
        yield double
