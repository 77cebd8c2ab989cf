"""``ctistudio queue publish``: approved rules → one commit in SigmaHQ's layout, pushed; PR/MR on the forge doubles."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests.export.demo_run import ONENOTE_RULE
from typer.testing import CliRunner

from ctistudio.cli.main import app
from ctistudio.testing.forge_double import GitHubDouble, GitLabDouble

ONENOTE_PATH = "rules/windows/process_creation/proc_creation_win_onenote_spawning_mshta.yml"
RUN_KEY_PATH = "rules/windows/registry/registry_set/registry_set_lantern_loader_run_key_persistence.yml"


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    path = tmp_path / "detections.git"
    git("init", "--quiet", "--bare", "-b", "main", str(path), cwd=tmp_path)
    return path


def seed(bare: Path, tmp_path: Path) -> str:
    """An initial commit on ``main`` of ``bare`` (a pull request needs a branch to merge into)."""
    work = tmp_path / "seed"
    git("clone", "--quiet", str(bare), str(work), cwd=tmp_path)
    (work / "README.md").write_text("detections\n")
    git("add", ".", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "start", cwd=work)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def commits(repo: Path, branch: str = "main") -> list[str]:
    return git("log", "--format=%H", branch, cwd=repo).splitlines()


def test_two_approved_rules_make_one_commit_and_publishing_again_adds_nothing(cli, approved_run, bare_repo: Path):
    first = cli("queue", "publish", "--repo", str(bare_repo), "--json")
    assert first.exit_code == 0, first.stderr
    report = json.loads(first.stdout)
    assert sorted(p["path"] for p in report["published"]) == sorted([ONENOTE_PATH, RUN_KEY_PATH])
    assert report["branch"] == "main" and report["skipped"] == [] and report["commit"]
    assert commits(bare_repo) == [report["commit"]]
    files = git("ls-tree", "-r", "--name-only", "main", cwd=bare_repo).splitlines()
    assert sorted(files) == sorted([ONENOTE_PATH, RUN_KEY_PATH])
    assert git("show", f"main:{ONENOTE_PATH}", cwd=bare_repo) == ONENOTE_RULE.strip()
    message = git("log", "-1", "--format=%B", "main", cwd=bare_repo)
    assert message.startswith("Add 2 Sigma rules from ctistudio")
    assert f"- {ONENOTE_PATH}: OneNote Spawning Mshta (5f0c1a2e-8d6b-4c3a-9e7f-1b2c3d4e5f60)" in message
    assert "Operation Paper Lantern — https://example.org/ctistudio/demo/operation-paper-lantern" in message

    again = cli("queue", "publish", "--repo", str(bare_repo))
    assert again.exit_code == 0, again.stderr
    assert "nothing new to publish" in again.stderr and again.stdout.count("same id already in") == 2
    assert len(commits(bare_repo)) == 1


def test_a_rule_the_repository_has_under_another_id_is_skipped_as_a_duplicate(cli, approved_run, tmp_path: Path):
    origin = tmp_path / "team-rules"
    git("init", "--quiet", "-b", "main", str(origin), cwd=tmp_path)
    theirs = origin / "rules" / "mshta_from_onenote.yml"
    theirs.parent.mkdir(parents=True)
    theirs.write_text(
        ONENOTE_RULE.replace("5f0c1a2e-8d6b-4c3a-9e7f-1b2c3d4e5f60", "0d6b2f6e-1111-4222-8333-944455556666").replace(
            "title: OneNote Spawning Mshta", "title: Mshta Child of OneNote"
        )
    )
    git("add", ".", cwd=origin)
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "ours", cwd=origin)
    git("checkout", "-q", "--detach", cwd=origin)  # a non-bare origin accepts pushes to branches not checked out

    done = cli("queue", "publish", "--repo", str(origin), "--json")
    assert done.exit_code == 0, done.stderr
    report = json.loads(done.stdout)
    assert [p["path"] for p in report["published"]] == [RUN_KEY_PATH]
    assert report["skipped"][0]["reason"] == "duplicate of rules/mshta_from_onenote.yml (similarity index)"


def test_pull_request_on_the_github_double(cli, approved_run, bare_repo: Path, monkeypatch, tmp_path: Path):
    start = seed(bare_repo, tmp_path)
    with GitHubDouble(project="acme/detections", token="ghp-test") as github:
        monkeypatch.setenv("CTISTUDIO_GITHUB_TOKEN", "ghp-test")
        monkeypatch.setenv("CTISTUDIO_GITHUB_API_URL", github.api_url)
        done = cli("queue", "publish", "--repo", str(bare_repo), "--pr", "github", "--pr-project", "acme/detections")
        assert done.exit_code == 0, done.stderr
        assert "github request opened: https://github.invalid/acme/detections/pull/1" in done.stderr
        [pull] = github.pulls
        assert pull["title"] == "Add 2 Sigma rules from ctistudio"
        assert (pull["head"], pull["base"]) == ("ctistudio/sigma-rules", "main")
        assert f"- {ONENOTE_PATH}: OneNote Spawning Mshta" in pull["body"]
        assert f"- {RUN_KEY_PATH}: Lantern Loader Run Key Persistence" in pull["body"]
        assert "Source articles:\n- Operation Paper Lantern" in pull["body"]
        assert github.requests_to("/repos/acme/detections/pulls")[0].headers["authorization"] == "Bearer ghp-test"
    assert commits(bare_repo, "ctistudio/sigma-rules")[1:] == [start]  # one commit on top of main
    assert commits(bare_repo) == [start]  # the base branch was not touched

    again = cli("queue", "publish", "--repo", str(bare_repo), "--pr", "github", "--pr-project", "acme/detections")
    assert again.exit_code == 0 and "nothing new to publish" in again.stderr
    assert len(github.pulls) == 1


def test_merge_request_on_the_gitlab_double(cli, approved_run, bare_repo: Path, monkeypatch, tmp_path: Path):
    seed(bare_repo, tmp_path)
    with GitLabDouble(project="acme/detections", token="glpat-test") as gitlab:
        monkeypatch.setenv("CTISTUDIO_GITLAB_TOKEN", "glpat-test")
        monkeypatch.setenv("CTISTUDIO_GITLAB_URL", gitlab.url)
        done = cli(
            "queue",
            "publish",
            "--repo",
            str(bare_repo),
            "--pr",
            "gitlab",
            "--pr-project",
            "acme/detections",
            "--branch",
            "rules/paper-lantern",
        )
        assert done.exit_code == 0, done.stderr
        [request] = gitlab.merge_requests
        assert request["title"] == "Add 2 Sigma rules from ctistudio"
        assert (request["source_branch"], request["target_branch"]) == ("rules/paper-lantern", "main")
        assert ONENOTE_PATH in request["description"] and RUN_KEY_PATH in request["description"]
        assert gitlab.requests[0].path == "/api/v4/projects/acme%2Fdetections/merge_requests"


def test_publish_refuses_bad_input_with_a_fix(cli, store, demo_run, bare_repo: Path, tmp_path: Path, monkeypatch):
    nothing = cli("queue", "publish", "--repo", str(bare_repo))
    assert nothing.exit_code == 1 and "no approved rules to publish" in nothing.stderr and "fix:" in nothing.stderr

    ids = [str(r["id"]) for r in json.loads(cli("queue", "list", "--run", str(demo_run), "--json").stdout)]
    assert len(ids) == 2 and cli("queue", "approve", *ids).exit_code == 0
    no_token = cli("queue", "publish", "--repo", str(bare_repo), "--pr", "github", "--pr-project", "a/b")
    assert no_token.exit_code == 1 and "CTISTUDIO_GITHUB_TOKEN" in no_token.stderr

    missing = cli("queue", "publish", "--repo", str(tmp_path / "no-such-repo"))
    assert missing.exit_code == 1 and "cannot clone the rules repository" in missing.stderr

    checked_out = tmp_path / "working-copy"
    git("init", "--quiet", "-b", "main", str(checked_out), cwd=tmp_path)
    git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.org",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
        cwd=checked_out,
    )
    refused = cli("queue", "publish", "--repo", str(checked_out))
    assert refused.exit_code == 1 and "cannot push to" in refused.stderr and "--branch NEW" in refused.stderr
    assert len(commits(checked_out)) == 1

    option = cli("queue", "publish", "--repo", f"--upload-pack=touch {tmp_path / 'pwned'}")
    assert option.exit_code == 1 and "--repo" in option.stderr and not (tmp_path / "pwned").exists()
    monkeypatch.setenv("CTISTUDIO_GITHUB_TOKEN", "ghp-test")
    empty = cli("queue", "publish", "--repo", str(bare_repo), "--pr", "github", "--pr-project", "a/b")
    assert empty.exit_code == 1 and "has no commits yet" in empty.stderr and "without --pr" in empty.stderr
    unknown = cli("queue", "publish", "--repo", str(bare_repo), "--pr", "bitbucket")
    assert unknown.exit_code == 1 and "--pr github or --pr gitlab" in unknown.stderr


def test_a_repository_that_refuses_writes_is_a_clear_error(cli, store, demo_run, bare_repo: Path):
    # As a server without write permission does (tests run as root here, so file modes cannot refuse):
    # a pre-receive hook that declines every push.
    hook = bare_repo / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'permission denied: read-only repository' >&2\nexit 1\n")
    hook.chmod(0o755)
    ids = [str(r["id"]) for r in json.loads(cli("queue", "list", "--run", str(demo_run), "--json").stdout)]
    assert cli("queue", "approve", *ids).exit_code == 0
    refused = cli("queue", "publish", "--repo", str(bare_repo))
    assert refused.exit_code == 1
    assert "cannot push to" in refused.stderr and "may write to the repository" in refused.stderr
    assert "read-only repository" in refused.stderr  # the server's own reason
    assert git("for-each-ref", cwd=bare_repo) == ""  # nothing landed
