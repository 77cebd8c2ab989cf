"""Fixtures of the Sigma tests: rule texts from tests/sigma/data and rules from the shared SigmaHQ snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def valid_rule_text() -> str:
    return (DATA / "valid_rule.yml").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def sigmahq_rules(shared: Path) -> Path:
    return shared / "sigmahq"


@pytest.fixture(scope="session")
def certutil_rule_path(sigmahq_rules: Path) -> Path:
    return sigmahq_rules / "rules/windows/process_creation/proc_creation_win_certutil_download.yml"


@pytest.fixture(scope="session")
def sigmahq_index(sigmahq_rules: Path, tmp_path_factory: pytest.TempPathFactory):
    """The similarity index over the shared SigmaHQ snapshot, built once, saved and loaded back."""
    from ctistudio.sigma.similarity import SimilarityIndex

    path = tmp_path_factory.mktemp("sigma-index") / "similarity-index.json"
    SimilarityIndex.build(sigmahq_rules).save(path)
    return SimilarityIndex.load(path)
