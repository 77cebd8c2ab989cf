"""Rule embeddings through the gateway, against the LM Studio test double (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.sigma.errors import SigmaIndexInvalid
from ctistudio.sigma.similarity import SimilarityIndex
from ctistudio.sigma.similarity.embeddings import RuleEmbeddings, embed_index, embed_rule
from ctistudio.sigma.similarity.index import EMBEDDINGS_FILENAME
from ctistudio.testing.lmstudio_double import LMStudioDouble

NAMES = [
    "proc_creation_win_certutil_download.yml",
    "proc_creation_win_certutil_encode.yml",
    "proc_creation_win_bitsadmin_download.yml",
    "proc_creation_win_mshta_http.yml",
]


@pytest.fixture
def small_corpus(tmp_path: Path, sigmahq_rules: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in NAMES:
        source = sigmahq_rules / "rules/windows/process_creation" / name
        (folder / name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


@pytest.fixture
def embedding_env(lmstudio_double: LMStudioDouble, monkeypatch: pytest.MonkeyPatch) -> LMStudioDouble:
    monkeypatch.setenv("CTISTUDIO_EMBEDDING_PROVIDER", "lmstudio")
    return lmstudio_double


async def test_embed_index_and_semantic_neighbours(
    small_corpus: Path, embedding_env: LMStudioDouble, tmp_path: Path
) -> None:
    index = SimilarityIndex.build(small_corpus)
    async with Gateway(load_settings(env_file=None)) as gateway:
        embeddings = await embed_index(gateway, index, batch_size=3)
        assert embeddings.rows == len(NAMES) and embeddings.dimensions == 64
        assert embeddings.model == "text-embedding-nomic-embed-text-v1.5"
        assert len(embedding_env.requests_to("/v1/embeddings")) == 2  # batches of 3: 3 + 1
        index.attach_embeddings(embeddings)
        path = index.save(tmp_path / "idx" / "similarity-index.json")
        assert (path.parent / EMBEDDINGS_FILENAME).is_file()

        loaded = SimilarityIndex.load(path)
        assert loaded.embeddings is not None and loaded.embeddings.model == embeddings.model
        text = (small_corpus / "proc_creation_win_bitsadmin_download.yml").read_text(encoding="utf-8")
        vector = await embed_rule(gateway, text, loaded)
    result = loaded.similar(text, top_k=3, query_vector=vector)
    assert result.semantic is not None and result.embedding_model == embeddings.model
    assert result.semantic[0].path == "proc_creation_win_bitsadmin_download.yml"
    assert result.semantic[0].cosine == pytest.approx(1.0, abs=1e-4)
    assert result.verdict == "duplicate"  # the verdict comes from the atoms, embeddings only add neighbours
    assert loaded.similar(text).semantic is None


def test_stale_or_foreign_vectors_are_refused(small_corpus: Path, tmp_path: Path) -> None:
    from array import array

    index = SimilarityIndex.build(small_corpus)
    wrong_rows = RuleEmbeddings("m", "p", 2, index.info.built_at, array("f", [1.0, 0.0]))
    with pytest.raises(SigmaIndexInvalid, match="were not made for this index"):
        index.attach_embeddings(wrong_rows)
    good = RuleEmbeddings("m", "p", 2, index.info.built_at, array("f", [1.0, 0.0] * len(NAMES)))
    index.attach_embeddings(good)
    path = index.save(tmp_path / "similarity-index.json")
    payload = json.loads((tmp_path / EMBEDDINGS_FILENAME).read_text(encoding="utf-8"))
    payload["index_built_at"] = "1999-01-01T00:00:00+00:00"
    (tmp_path / EMBEDDINGS_FILENAME).write_text(json.dumps(payload), encoding="utf-8")
    loaded = SimilarityIndex.load(path)
    assert loaded.embeddings is None and "not made for this index" in (loaded.embeddings_note or "")
    with pytest.raises(SigmaIndexInvalid, match="3 dimensions"):
        good.nearest([1.0, 0.0, 0.0], 1)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctistudio.cli.main", *args],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_index_embeds_and_similar_semantic(
    small_corpus: Path, embedding_env: LMStudioDouble, tmp_path: Path
) -> None:
    built = cli("sigma", "index", "--rules", str(small_corpus), "--json", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert summary["embeddings"] == {
        "model": "text-embedding-nomic-embed-text-v1.5",
        "provider": "lmstudio",
        "dimensions": 64,
    }
    rule = small_corpus / "proc_creation_win_mshta_http.yml"
    similar = cli("sigma", "similar", str(rule), "--semantic", "--json", cwd=tmp_path)
    assert similar.returncode == 0, similar.stderr
    result = json.loads(similar.stdout)
    assert result["semantic"][0]["path"] == "proc_creation_win_mshta_http.yml"


def test_cli_embedding_failure_keeps_the_atom_index(small_corpus: Path, tmp_path: Path) -> None:
    env_provider = {"CTISTUDIO_EMBEDDING_PROVIDER": "lmstudio"}  # LM Studio points at a closed port in tests
    done = subprocess.run(
        [sys.executable, "-m", "ctistudio.cli.main", "sigma", "index", "--rules", str(small_corpus)],
        cwd=tmp_path,
        env={**os.environ, **env_provider},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1
    assert "the atom index was saved to" in done.stderr and "--no-embeddings" in done.stderr
    index_path = Path(os.environ["CTISTUDIO_DATA_DIR"]) / "sigma" / "similarity-index.json"
    assert SimilarityIndex.load(index_path).info.rules == len(NAMES)
