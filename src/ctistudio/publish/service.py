"""Publishing approved rules to a detection-as-code repository: files, one commit, push, optional PR/MR.

    report = publish_approved(store, settings, PublishRequest(repo="git@github.com:acme/detections.git",
                                                              pr="github"))
    report.commit, report.published, report.skipped, report.pull_request

The repository is cloned into a temporary folder; each approved rule is written where SigmaHQ would keep
it (:mod:`ctistudio.publish.layout`) unless the repository already has it — the same ``id:``, or a rule
the similarity index calls a duplicate. The new files go into one commit whose message lists the rules
and the articles they came from, pushed to the branch (default: the repository's default branch; with
``--pr``: ``ctistudio/sigma-rules``). Nothing new: no commit, no push, no request.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import BaseModel, Field

from ctistudio.config import Settings
from ctistudio.errors import ConfigurationError, InvalidInput
from ctistudio.publish.git_repo import GitRepo, PublishError, auth_env
from ctistudio.publish.layout import rule_path
from ctistudio.publish.pull_requests import TOKEN_VARIABLE, Forge, PullRequest, open_github, open_gitlab, project_of
from ctistudio.safe_yaml import load_yaml_documents
from ctistudio.sigma.rule_yaml import RULE_LIMITS
from ctistudio.store import Store
from ctistudio.store.articles import get_article
from ctistudio.store.rules import get_rule, list_rules

PR_BRANCH = "ctistudio/sigma-rules"


class PublishRequest(BaseModel):
    repo: str = Field(min_length=1, max_length=2000, pattern=r"^[^-\s]")  # a path or URL git can clone and push to
    branch: str | None = Field(None, max_length=200, pattern=r"^[A-Za-z0-9._][A-Za-z0-9._/-]*$")
    pr: Forge | None = None
    project: str | None = Field(None, max_length=300)  # owner/name on the forge (default: from the URL)
    rule_ids: list[int] | None = None


class PublishedRule(BaseModel):
    rule_id: int
    title: str
    path: str
    sigma_id: str


class SkippedRule(BaseModel):
    rule_id: int
    title: str
    reason: str


class PublishReport(BaseModel):
    repository: str
    branch: str
    base_branch: str
    commit: str | None = None
    published: list[PublishedRule] = Field(default_factory=list)
    skipped: list[SkippedRule] = Field(default_factory=list)
    pull_request: PullRequest | None = None


class _Candidate(BaseModel):
    rule_id: int
    title: str
    yaml: str
    sigma_id: str
    logsource: dict[str, Any]
    article: str | None = None


def _token(settings: Settings, forge: Forge | None) -> str | None:
    if forge is None:
        return None
    token = settings.secret("github_token" if forge == "github" else "gitlab_token")
    if not token:
        raise ConfigurationError(
            f"a {'pull' if forge == 'github' else 'merge'} request needs {TOKEN_VARIABLE[forge]}, which is not set",
            fix=f"Set {TOKEN_VARIABLE[forge]} (a token allowed to push and open requests) in .env or on the "
            "Settings page (Publishing), or publish without --pr.",
        )
    return token


def _candidates(store: Store, rule_ids: list[int] | None) -> list[_Candidate]:
    with store.session() as session:
        if rule_ids:
            rules = [get_rule(session, i) for i in rule_ids]
            refused = [r.id for r in rules if r.review_state != "approved"]
            if refused:
                raise InvalidInput(
                    f"rule(s) {', '.join(map(str, refused))} are not approved",
                    fix="Approve them first: `ctistudio queue approve ID`.",
                )
        else:
            rules = sorted(
                list_rules(session, queued_only=False, review_state="approved", limit=100_000), key=lambda r: r.id
            )
        if not rules:
            raise InvalidInput(
                "there are no approved rules to publish",
                fix="Review the queue and approve rules: `ctistudio queue list`, `ctistudio queue approve ID`.",
            )
        out = []
        for rule in rules:
            article = get_article(session, rule.article_id) if rule.article_id else None
            source = (
                f"{article.title} — {article.url}" if article and article.url else (article.title if article else None)
            )
            out.append(
                _Candidate(
                    rule_id=rule.id,
                    title=rule.title,
                    yaml=rule.yaml,
                    sigma_id=rule.rule_uuid or str(rule.id),
                    logsource=dict(rule.logsource or {}),
                    article=source,
                )
            )
        return out


def _existing(root: Path) -> tuple[dict[str, str], Any]:
    """The rules already in the clone: ``id`` → path, and a similarity index over them (None: no rules)."""
    from ctistudio.sigma.corpus import CorpusRule
    from ctistudio.sigma.similarity import SimilarityIndex

    ids: dict[str, str] = {}
    corpus: list[CorpusRule] = []
    for path in sorted(root.rglob("*.y*ml")):
        if ".git" in path.parts:
            continue
        try:
            documents = load_yaml_documents(path.read_text(encoding="utf-8"), limits=RULE_LIMITS, what=str(path))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        relative = path.relative_to(root).as_posix()
        for document in documents:
            if isinstance(document, dict) and isinstance(document.get("detection"), dict):
                if document.get("id"):
                    ids[str(document["id"])] = relative
                corpus.append(CorpusRule(relative, document))
    return ids, SimilarityIndex.from_rules(corpus) if corpus else None


def _duplicate_of(index: Any, text: str) -> str | None:
    from ctistudio.sigma.errors import SigmaError

    if index is None:
        return None
    try:
        result = index.similar(text, 1)
    except SigmaError:
        return None
    if result.verdict == "duplicate" and result.matches:
        return result.matches[0].path
    return None


def _free_path(root: Path, path: str) -> str:
    candidate, number = path, 2
    while (root / candidate).exists():
        candidate = path.removesuffix(".yml") + f"_{number}.yml"
        number += 1
    return candidate


def _message(published: list[PublishedRule], articles: list[str]) -> tuple[str, str]:
    """The commit message and the request title/body share this: a title, then rules and articles."""
    title = f"Add {len(published)} Sigma rule{'s' if len(published) != 1 else ''} from ctistudio"
    lines = ["Rules:", *(f"- {p.path}: {p.title} ({p.sigma_id})" for p in published)]
    if articles:
        lines += ["", "Source articles:", *(f"- {a}" for a in articles)]
    return title, "\n".join(lines)


def publish_approved(store: Store, settings: Settings, request: PublishRequest) -> PublishReport:
    """Publish the approved rules (or ``request.rule_ids``) as described in the module docstring."""
    token = _token(settings, request.pr)
    project = request.project or project_of(request.repo)
    if request.pr and not project:
        raise InvalidInput(
            f"cannot tell the {request.pr} project of {request.repo}",
            fix="Pass --pr-project OWNER/NAME (the repository as the forge names it).",
        )
    candidates = _candidates(store, request.rule_ids)
    with tempfile.TemporaryDirectory(prefix="ctistudio-publish-") as folder:
        repo = GitRepo.clone(request.repo, Path(folder) / "repo", auth_env(request.repo, token, request.pr))
        base = repo.current_branch()
        branch = request.branch or (PR_BRANCH if request.pr else base)
        if request.pr and not repo.has_commits():
            raise InvalidInput(
                f"{request.repo} has no commits yet, so there is no {base} branch for a request to merge into",
                fix="Publish once without --pr (it creates the branch), or push an initial commit first.",
            )
        if request.pr and branch == base:
            raise InvalidInput(
                f"a {request.pr} request needs a branch other than {base}",
                fix=f"Pass --branch NAME (default with --pr: {PR_BRANCH}).",
            )
        if branch != base:
            repo.switch_to(branch)
        report = PublishReport(repository=request.repo, branch=branch, base_branch=base)
        ids, index = _existing(repo.path)
        articles: dict[str, None] = {}
        for rule in candidates:
            if rule.sigma_id in ids:
                report.skipped.append(
                    SkippedRule(
                        rule_id=rule.rule_id, title=rule.title, reason=f"same id already in {ids[rule.sigma_id]}"
                    )
                )
                continue
            duplicate = _duplicate_of(index, rule.yaml)
            if duplicate:
                report.skipped.append(
                    SkippedRule(
                        rule_id=rule.rule_id, title=rule.title, reason=f"duplicate of {duplicate} (similarity index)"
                    )
                )
                continue
            path = _free_path(repo.path, rule_path(rule.logsource, rule.title))
            (repo.path / path).parent.mkdir(parents=True, exist_ok=True)
            (repo.path / path).write_text(rule.yaml if rule.yaml.endswith("\n") else rule.yaml + "\n", encoding="utf-8")
            ids[rule.sigma_id] = path
            report.published.append(
                PublishedRule(rule_id=rule.rule_id, title=rule.title, path=path, sigma_id=rule.sigma_id)
            )
            if rule.article:
                articles[rule.article] = None
        if not report.published:
            return report
        title, body = _message(report.published, list(articles))
        report.commit = repo.commit([p.path for p in report.published], f"{title}\n\n{body}\n")
        repo.push(branch)
    if request.pr and token and project:
        report.pull_request = open_request(settings, request.pr, token, project, branch, base, title, body)
    return report


def open_request(
    settings: Settings, forge: Forge, token: str, project: str, head: str, base: str, title: str, body: str
) -> PullRequest:
    text = body + "\n\nValidated with pySigma and approved by a reviewer in ctistudio."
    try:
        with httpx.Client(timeout=30) as client:
            if forge == "github":
                return open_github(
                    client, settings.github_api_url, token, project, head=head, base=base, title=title, body=text
                )
            return open_gitlab(
                client, settings.gitlab_url, token, project, head=head, base=base, title=title, body=text
            )
    except httpx.HTTPError as exc:
        raise PublishError(
            f"the rules were pushed to {head}, but the {forge} API could not be reached: {exc}",
            fix=f"Open the request by hand from branch {head}, or check CTISTUDIO_{forge.upper()}"
            f"{'_API' if forge == 'github' else ''}_URL and the network, then publish again.",
        ) from exc
