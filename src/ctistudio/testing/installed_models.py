"""The real models tests and benchmarks run: found in the shared models folder, or a clear failure.

Tests may not download (they talk to loopback only), so ``./studio test`` installs the defaults first
(``ctistudio models install --defaults``) into ``CTISTUDIO_MODELS_DIR`` (default
``~/.cache/ctistudio/models``, shared by every clone and kept between CI runs on a machine).
"""

from __future__ import annotations

from pathlib import Path

from ctistudio.config import load_settings
from ctistudio.modelhub import ModelInstaller


def shared_installer() -> ModelInstaller:
    """The installer over the real models folder (env + defaults; no .env of the test's working dir)."""
    return ModelInstaller.from_settings(load_settings(env_file=None))


def require_installed(name: str) -> Path:
    """The installed model's path; fails the test (not skips) with the command that installs it."""
    import pytest

    installer = shared_installer()
    if not installer.is_installed(name):
        pytest.fail(
            f"model {name} is not installed in {installer.models_dir}; run "
            f"`.venv/bin/ctistudio models install {name}` (./studio test does it before the tests)",
            pytrace=False,
        )
    return installer.path(name)
