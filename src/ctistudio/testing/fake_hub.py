"""A model hub on 127.0.0.1 answering what ``huggingface_hub`` asks (point ``HF_ENDPOINT`` at it).

    with FakeHub() as hub:
        hub.add_file("org/model-GGUF", "model.gguf", data)
        hf_hub_download("org/model-GGUF", "model.gguf", endpoint=hub.url, local_dir=...)

- ``HEAD``/``GET /<org>/<repo>/resolve/<revision>/<filename>`` (revision ``main`` or the commit): the
  file, with ``X-Repo-Commit``, ``ETag`` (the sha256, as the hub gives for large files) and
  ``Content-Length``; Range requests work.
- ``GET /api/models/<org>/<repo>/revision/<revision>``: the repository's commit and file list, and
  ``GET /api/models/<org>/<repo>/tree/<revision>``: its files (what ``snapshot_download`` reads).
Unknown repositories, revisions or files answer 404.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ctistudio.testing.file_server import Blob, FileServer

_RESOLVE = re.compile(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)")


class FakeHub(FileServer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repos: dict[str, dict[str, bytes]] = {}
        self.routes.append((re.compile(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)"), self._repo_info))
        self.routes.append((re.compile(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)"), self._tree))

    def env(self) -> dict[str, str]:
        return {"HF_ENDPOINT": self.url}

    def commit(self, repo: str) -> str:
        digest = hashlib.sha1(repo.encode())
        for name in sorted(self.repos.get(repo, {})):
            digest.update(name.encode() + self.repos[repo][name])
        return digest.hexdigest()

    def add_file(self, repo: str, filename: str, data: bytes) -> str:
        """Publish ``filename`` in ``repo``; returns the path it is served at (revision ``main``)."""
        self.repos.setdefault(repo, {})[filename] = data
        return f"/{repo}/resolve/main/{filename}"

    def find_blob(self, path: str) -> Blob | None:
        match = _RESOLVE.fullmatch(path)
        if not match:
            return None
        repo, revision, filename = match.groups()
        data = self.repos.get(repo, {}).get(filename)
        if data is None or revision not in ("main", self.commit(repo)):
            return None
        return Blob(data, {"X-Repo-Commit": self.commit(repo), "ETag": f'"{hashlib.sha256(data).hexdigest()}"'})

    def _known(self, repo: str, revision: str) -> dict[str, bytes] | None:
        files = self.repos.get(repo)
        return files if files is not None and revision in ("main", self.commit(repo)) else None

    def _repo_info(self, match: re.Match[str], headers: dict[str, str]) -> tuple[int, Any]:
        repo, revision = match.groups()
        files = self._known(repo, revision)
        if files is None:
            return 404, {"error": "Repository not found"}
        return 200, {
            "id": repo,
            "modelId": repo,
            "sha": self.commit(repo),
            "private": False,
            "siblings": [{"rfilename": name, "size": len(data)} for name, data in sorted(files.items())],
        }

    def _tree(self, match: re.Match[str], headers: dict[str, str]) -> tuple[int, Any]:
        repo, revision = match.groups()
        files = self._known(repo, revision)
        if files is None:
            return 404, {"error": "Repository not found"}
        return 200, [
            {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
            for name, data in sorted(files.items())
        ]
