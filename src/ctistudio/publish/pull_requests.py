"""Opening a pull request (GitHub) or merge request (GitLab) through the forge's REST API, with ``httpx``.

One documented call each — ``POST /repos/{owner}/{repo}/pulls`` and ``POST /projects/{id}/merge_requests``
— plus the look-up of the request that is already open for the branch, so publishing again to the same
branch updates that request instead of failing.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel

from ctistudio.publish.git_repo import PublishError

Forge = Literal["github", "gitlab"]
TOKEN_VARIABLE = {"github": "CTISTUDIO_GITHUB_TOKEN", "gitlab": "CTISTUDIO_GITLAB_TOKEN"}


class PullRequest(BaseModel):
    forge: str
    number: int
    url: str
    created: bool  # False: one was already open for the branch (the push updated it)


def project_of(remote: str) -> str | None:
    """``owner/name`` (GitLab: ``group/sub/name``) of an HTTPS or SSH remote URL; None for a local path."""
    match = re.match(r"^[\w.-]+@[\w.-]+:(?P<path>.+?)(?:\.git)?/?$", remote)  # git@github.com:owner/repo.git
    if match:
        return match.group("path")
    parts = urlsplit(remote)
    if parts.scheme in ("http", "https", "ssh", "git") and parts.path.strip("/"):
        return re.sub(r"\.git$", "", parts.path.strip("/"))
    return None


def _refused(forge: Forge, response: httpx.Response, project: str) -> PublishError:
    name = "GitHub" if forge == "github" else "GitLab"
    detail = response.text[:300]
    if response.status_code in (401, 403):
        return PublishError(
            f"{name} refused the token (HTTP {response.status_code}): {detail}",
            fix=f"Check {TOKEN_VARIABLE[forge]}: it must be valid and allowed to open "
            f"{'pull' if forge == 'github' else 'merge'} requests on {project}.",
        )
    if response.status_code == 404:
        return PublishError(
            f"{name} has no project {project!r} (HTTP 404)",
            fix="Pass --pr-project OWNER/NAME as the forge names it (and check the token can see it).",
        )
    return PublishError(f"{name} answered HTTP {response.status_code}: {detail}", fix="Check the forge's status.")


def open_github(
    client: httpx.Client, api_url: str, token: str, project: str, *, head: str, base: str, title: str, body: str
) -> PullRequest:
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    url = f"{api_url.rstrip('/')}/repos/{project}/pulls"
    response = client.post(url, headers=headers, json={"title": title, "head": head, "base": base, "body": body})
    if response.status_code == 201:
        data = response.json()
        return PullRequest(forge="github", number=data["number"], url=data["html_url"], created=True)
    if response.status_code == 422 and "already exists" in response.text:
        owner = project.split("/")[0]
        found = client.get(url, headers=headers, params={"head": f"{owner}:{head}", "state": "open"})
        if found.status_code == 200 and found.json():
            data = found.json()[0]
            return PullRequest(forge="github", number=data["number"], url=data["html_url"], created=False)
    raise _refused("github", response, project)


def open_gitlab(
    client: httpx.Client, base_url: str, token: str, project: str, *, head: str, base: str, title: str, body: str
) -> PullRequest:
    headers = {"PRIVATE-TOKEN": token}
    url = f"{base_url.rstrip('/')}/api/v4/projects/{quote(project, safe='')}/merge_requests"
    payload = {"source_branch": head, "target_branch": base, "title": title, "description": body}
    response = client.post(url, headers=headers, json=payload)
    if response.status_code == 201:
        data = response.json()
        return PullRequest(forge="gitlab", number=data["iid"], url=data["web_url"], created=True)
    if response.status_code == 409:
        found = client.get(url, headers=headers, params={"source_branch": head, "state": "opened"})
        if found.status_code == 200 and found.json():
            data = found.json()[0]
            return PullRequest(forge="gitlab", number=data["iid"], url=data["web_url"], created=False)
    raise _refused("gitlab", response, project)
