"""The scheduler's SigmaHQ refresh: a clone is pulled (fast-forward) before the index is rebuilt."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ctistudio.config import load_settings
from ctistudio.errors import ConfigurationError
from ctistudio.sigma.refresh import refresh_sigma_index
from ctistudio.sigma.similarity import SimilarityIndex

RULE = """title: {title}
id: {uuid}
status: test
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\\\\{image}'
    condition: selection
level: low
"""


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd, check=True,
                   capture_output=True)  # fmt: skip


def _head(repo: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()


def _add_rule(repo: Path, n: int, image: str) -> None:
    uuid = f"00000000-0000-4000-8000-{n:012d}"
    (repo / f"rule_{n}.yml").write_text(RULE.format(title=f"Rule {n}", uuid=uuid, image=image))
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", f"rule {n}", cwd=repo)


async def test_a_clone_is_pulled_then_indexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    origin = tmp_path / "origin"
    origin.mkdir()
    _git("init", "-q", "-b", "main", cwd=origin)
    _add_rule(origin, 1, "mshta.exe")
    clone = tmp_path / "clone"
    _git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    _add_rule(origin, 2, "rundll32.exe")  # upstream moves on after the clone
    monkeypatch.setenv("CTISTUDIO_SIGMA_RULES_DIR", str(clone))
    settings = load_settings(env_file=None)

    refresh = await refresh_sigma_index(settings)

    assert refresh.rules == 2 and refresh.note is None and not refresh.embedded
    assert refresh.commit == _head(origin)
    assert SimilarityIndex.load(Path(refresh.path)).info.rules == 2


async def test_no_rules_folder_says_how_to_set_one_or_stop_the_refresh():
    with pytest.raises(ConfigurationError) as caught:
        await refresh_sigma_index(load_settings(env_file=None))
    assert "CTISTUDIO_SIGMA_RULES_DIR" in caught.value.fix and "CTISTUDIO_SIGMA_REFRESH_HOURS=0" in caught.value.fix
