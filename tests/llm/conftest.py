"""Helpers for the gateway tests: settings pointed at a double (nothing else enabled)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ctistudio.config import Settings, load_settings


@pytest.fixture
def settings_for() -> Callable[..., Settings]:
    """``settings_for(double, **fields)``: settings whose LM Studio is ``double`` (embedded engine off)."""

    def make(double: Any = None, **fields: Any) -> Settings:
        values: dict[str, Any] = {"embedded": False}
        if double is not None:
            values["lmstudio_api_url"] = double.url
            values["lmstudio_embedding_url"] = double.url + "/embeddings"
        values.update(fields)
        return load_settings(values, env_file=None)

    return make
