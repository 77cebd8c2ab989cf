"""Test doubles of GitHub's and GitLab's REST APIs: REAL HTTP servers on 127.0.0.1.

Only what opening a pull/merge request needs, with each service's status codes and wording::

    with GitHubDouble(project="acme/detections", token="t") as github:
        github.api_url          # -> CTISTUDIO_GITHUB_API_URL
        github.pulls            # the requests opened: [{"number", "title", "head", "base", "body", ...}]

    with GitLabDouble(project="acme/detections", token="t") as gitlab:
        gitlab.url              # -> CTISTUDIO_GITLAB_URL
        gitlab.merge_requests

GitHub: ``POST /repos/{project}/pulls`` → 201 ``{number, html_url, …}``; a second request for the same head
→ 422 "A pull request already exists for owner:branch."; ``GET /repos/{project}/pulls?head=owner:branch``
lists open ones; a wrong token → 401 "Bad credentials". GitLab: ``POST /api/v4/projects/{url-encoded
project}/merge_requests`` → 201 ``{iid, web_url, …}``; the same source branch again → 409 "Another open merge
request already exists for this source branch: !N"; ``GET …?source_branch=B``; a wrong token → 401
"401 Unauthorized". An unknown project → 404 as each service words it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from ctistudio.testing.http_double import Exchange, HttpDouble


def _query(ex: Exchange) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(ex.handler.path).query).items()}


class GitHubDouble(HttpDouble):
    def __init__(self, *, project: str, token: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.token = token
        self.pulls: list[dict[str, Any]] = []
        self.route("POST", f"/repos/{project}/pulls", self._create)
        self.route("GET", f"/repos/{project}/pulls", self._list)

    @property
    def api_url(self) -> str:
        return self.root_url

    def authorized(self, ex: Exchange) -> bool:
        if (ex.header("Authorization") or "") in (f"Bearer {self.token}", f"token {self.token}"):
            return True
        ex.send_json(
            401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}
        )
        return False

    def unknown_endpoint(self, ex: Exchange) -> None:
        ex.send_json(
            404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}
        )

    def _create(self, ex: Exchange) -> None:
        body = ex.body if isinstance(ex.body, dict) else {}
        missing = [k for k in ("title", "head", "base") if not body.get(k)]
        if missing:
            ex.send_json(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "PullRequest", "field": f, "code": "missing_field"} for f in missing],
                },
            )
            return
        owner = self.project.split("/")[0]
        with self.lock:
            if any(p["head"] == body["head"] and p["state"] == "open" for p in self.pulls):
                message = f"A pull request already exists for {owner}:{body['head']}."
                ex.send_json(
                    422,
                    {
                        "message": "Validation Failed",
                        "errors": [{"resource": "PullRequest", "code": "custom", "message": message}],
                    },
                )
                return
            number = len(self.pulls) + 1
            pull = {
                "number": number,
                "state": "open",
                "title": body["title"],
                "head": body["head"],
                "base": body["base"],
                "body": body.get("body") or "",
                "html_url": f"https://github.invalid/{self.project}/pull/{number}",
            }
            self.pulls.append(pull)
        ex.send_json(201, pull)

    def _list(self, ex: Exchange) -> None:
        query = _query(ex)
        head = query.get("head", "").split(":", 1)[-1]
        with self.lock:
            found = [
                p for p in self.pulls if (not head or p["head"] == head) and p["state"] == query.get("state", "open")
            ]
        ex.send_json(200, found)


class GitLabDouble(HttpDouble):
    def __init__(self, *, project: str, token: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.token = token
        self.merge_requests: list[dict[str, Any]] = []
        path = f"/api/v4/projects/{quote(project, safe='')}/merge_requests"
        self.route("POST", path, self._create)
        self.route("GET", path, self._list)

    @property
    def url(self) -> str:
        return self.root_url

    def authorized(self, ex: Exchange) -> bool:
        if ex.header("PRIVATE-TOKEN") == self.token:
            return True
        ex.send_json(401, {"message": "401 Unauthorized"})
        return False

    def unknown_endpoint(self, ex: Exchange) -> None:
        ex.send_json(404, {"message": "404 Project Not Found"})

    def _create(self, ex: Exchange) -> None:
        body = ex.body if isinstance(ex.body, dict) else {}
        missing = [k for k in ("source_branch", "target_branch", "title") if not body.get(k)]
        if missing:
            ex.send_json(400, {"error": f"{', '.join(missing)} is missing"})
            return
        with self.lock:
            open_one = next((m for m in self.merge_requests if m["source_branch"] == body["source_branch"]), None)
            if open_one is not None:
                message = f"Another open merge request already exists for this source branch: !{open_one['iid']}"
                ex.send_json(409, {"message": [message]})
                return
            iid = len(self.merge_requests) + 1
            request = {
                "iid": iid,
                "state": "opened",
                "title": body["title"],
                "source_branch": body["source_branch"],
                "target_branch": body["target_branch"],
                "description": body.get("description") or "",
                "web_url": f"https://gitlab.invalid/{self.project}/-/merge_requests/{iid}",
            }
            self.merge_requests.append(request)
        ex.send_json(201, request)

    def _list(self, ex: Exchange) -> None:
        branch = _query(ex).get("source_branch")
        with self.lock:
            found = [m for m in self.merge_requests if not branch or m["source_branch"] == branch]
        ex.send_json(200, found)
