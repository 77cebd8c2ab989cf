"""A working clone of the rules repository, driven through the ``git`` command (the reference implementation).

Git never waits for credentials (``GIT_TERMINAL_PROMPT=0``); a forge token, when one is configured, is
given to git through environment-only configuration (``GIT_CONFIG_*``: an ``Authorization`` header for
that host), so it never appears in a command line, a remote URL or ``.git/config``.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from ctistudio.errors import CtiStudioError

COMMITTER = ("ctistudio", "ctistudio@localhost")
ALLOWED_PROTOCOLS = "file:git:http:https:ssh"


class PublishError(CtiStudioError):
    """Publishing to the rules repository failed (git, the forge's API, or the repository itself)."""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _push_reason(text: str) -> str:
    """Why a push failed: the server's own words (``remote:`` lines, the rejected ref) before git's closing
    "failed to push some refs", which says nothing."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    told = [line.removeprefix("remote:").strip() for line in lines if line.startswith("remote:")]
    rejected = [line for line in lines if "rejected]" in line]
    return "; ".join([t for t in told if t] + rejected) or _last_line(text)


def auth_env(remote: str, token: str | None, forge: str | None) -> dict[str, str]:
    """Environment that makes git send ``token`` to ``remote``'s host (HTTPS remotes only)."""
    parts = urlsplit(remote)
    if not token or parts.scheme not in ("http", "https") or not parts.hostname:
        return {}
    user = "oauth2" if forge == "gitlab" else "x-access-token"
    basic = base64.b64encode(f"{user}:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{parts.scheme}://{parts.netloc}/.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


class GitRepo:
    """One local clone; every method runs git in it and raises :class:`PublishError` with git's reason."""

    def __init__(self, path: Path, remote: str, env: dict[str, str] | None = None) -> None:
        self.path = path
        self.remote = remote
        # Only the transports a rules repository uses (never ext::, which runs commands); no prompts.
        self.env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,
            **(env or {}),
        }

    @classmethod
    def clone(cls, remote: str, dest: Path, env: dict[str, str] | None = None) -> GitRepo:
        if shutil.which("git") is None:
            raise PublishError("git is not installed", fix="Install git (apt-get install git) and publish again.")
        repo = cls(dest, remote, env)
        done = repo._run(["clone", "--quiet", "--", remote, str(dest)], cwd=dest.parent, check=False)
        if done.returncode != 0:
            raise PublishError(
                f"cannot clone the rules repository {remote}: {_last_line(done.stderr)}",
                fix="Check the path or URL (a local bare repository, an SSH or HTTPS URL) and your access to it.",
            )
        return repo

    def _run(self, args: list[str], *, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd or self.path, env=self.env, capture_output=True, text=True, timeout=300
            )
        except subprocess.TimeoutExpired as exc:
            raise PublishError(f"git {args[0]} took more than 5 minutes", fix="Check the network and retry.") from exc
        if check and done.returncode != 0:
            raise PublishError(
                f"git {' '.join(args[:2])} failed in {self.path}: {_last_line(done.stderr or done.stdout)}",
                fix="Run the same git command in a clone of the repository to see what it needs.",
            )
        return done

    def git(self, *args: str) -> str:
        return self._run(list(args)).stdout.strip()

    def current_branch(self) -> str:
        """The checked-out branch (in an empty clone: the branch its first commit will create)."""
        return self.git("symbolic-ref", "--short", "HEAD")

    def has_commits(self) -> bool:
        return self._run(["rev-parse", "--verify", "--quiet", "HEAD"], check=False).returncode == 0

    def remote_branch_exists(self, branch: str) -> bool:
        done = self._run(["ls-remote", "--exit-code", "--heads", "origin", branch], check=False)
        return done.returncode == 0

    def switch_to(self, branch: str) -> None:
        """Check out ``branch``: the remote's when it exists, else a new one from the current commit."""
        if self.remote_branch_exists(branch):
            self.git("fetch", "--quiet", "origin", f"refs/heads/{branch}:refs/remotes/origin/{branch}")
            self.git("checkout", "--quiet", "-B", branch, f"origin/{branch}")
        elif self.has_commits():
            self.git("checkout", "--quiet", "-B", branch)
        else:
            self.git("symbolic-ref", "HEAD", f"refs/heads/{branch}")

    def commit(self, paths: list[str], message: str) -> str:
        """Commit ``paths`` with ``message`` (ctistudio as author unless git has a user configured)."""
        self.git("add", "--", *paths)
        if not self._run(["config", "user.email"], check=False).stdout.strip():
            name, email = COMMITTER
            self.env.update(
                GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email
            )
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD")

    def push(self, branch: str) -> None:
        done = self._run(["push", "--quiet", "origin", f"HEAD:refs/heads/{branch}"], check=False)
        if done.returncode != 0:
            raise PublishError(
                f"cannot push to {self.remote} (branch {branch}): {_push_reason(done.stderr)}",
                fix="Make sure you may write to the repository: a local bare repository needs write permission; "
                "a checked-out branch of a non-bare repository cannot be pushed to (use --branch NEW); for "
                "HTTPS on GitHub/GitLab set CTISTUDIO_GITHUB_TOKEN / CTISTUDIO_GITLAB_TOKEN, or use an SSH URL.",
            )
