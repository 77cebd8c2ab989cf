"""``ctistudio queue``: the review queue of generated Sigma rules — list, show, approve, reject, edit, export, publish,
convert."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from ctistudio.cli.common import cli_errors, console, err_console, print_json, settings
from ctistudio.errors import InvalidInput

if TYPE_CHECKING:  # the store and pySigma are imported when a command runs, not at start-up
    from ctistudio.pipeline.review import ReviewQueue, RuleView

TARGET_NAMES = "splunk, elastic, esql, eql"

app = typer.Typer(help="Review generated Sigma rules: list, show, approve, reject, edit, export, convert.")


def _queue() -> ReviewQueue:
    from ctistudio.pipeline.novelty import load_novelty_judge
    from ctistudio.pipeline.review import ReviewQueue
    from ctistudio.store import Store

    return ReviewQueue(Store(settings()), load_novelty_judge(settings()))


def _print_rules(rules: list[RuleView]) -> None:
    table = Table("id", "run", "title", "log source", "level", "valid", "verdict", "closest SigmaHQ rule", "review")
    for r in rules:
        top = r.similar[0] if r.similar else None
        closest = f"{top.get('title', '')} ({float(top.get('score', 0)):.2f})" if top else ""
        table.add_row(
            str(r.id),
            str(r.run_id or ""),
            r.title,
            "/".join(v for v in r.logsource.values() if v),
            r.level or "",
            "yes" if r.valid else f"no ({len(r.errors)})",
            r.verdict or ("unchecked" if r.valid else ""),
            closest,
            r.review_state,
        )
    console.print(table)


@app.command("list")
@cli_errors
def list_command(
    everything: bool = typer.Option(False, "--all", help="Every rule: reviewed, duplicates and invalid ones too."),
    state: str | None = typer.Option(None, "--state", help="Only rules in this review state (pending, approved…)."),
    verdict: str | None = typer.Option(None, "--verdict", help="Only duplicate, similar or novel rules."),
    run_id: int | None = typer.Option(None, "--run", help="Only the rules of this run."),
    as_json: bool = typer.Option(False, "--json", help="Print the rules as JSON."),
) -> None:
    """Rules waiting for review (valid, not a duplicate of a SigmaHQ rule), newest first; --state or
    --verdict list every rule that matches instead."""
    queue = _queue()
    rules = queue.list(everything=everything, state=state, verdict=verdict, run_id=run_id)
    if as_json:
        print_json(rules)
        return
    if not rules:
        counts = queue.counts()
        err_console.print(
            "nothing to review"
            + (
                f" ({counts['approved']} approved, {counts['rejected']} rejected, {counts['duplicate']} duplicates, "
                f"{counts['invalid']} invalid; see --all)"
            )
        )
        return
    _print_rules(rules)


@app.command("show")
@cli_errors
def show_command(
    rule_id: int = typer.Argument(..., help="The rule's id (see `queue list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the rule as JSON."),
) -> None:
    """One rule: its YAML, validation errors and the SigmaHQ rules it resembles."""
    rule = _queue().show(rule_id)
    if as_json:
        print_json(rule)
        return
    _print_rules([rule])
    for error in rule.errors:
        console.print(f"[red]error[/] {error.get('location') or ''}: {error.get('message')}", highlight=False)
    for match in rule.similar[:5]:
        console.print(
            f"similar: {match.get('title')} {match.get('path', '')} score {float(match.get('score', 0)):.2f} "
            f"{match.get('relation', '')}",
            highlight=False,
        )
    sys.stdout.write((rule.yaml or "") + "\n")


@app.command("approve")
@cli_errors
def approve_command(
    rule_ids: list[int] = typer.Argument(..., help="One or more rule ids."),
    note: str | None = typer.Option(None, "--note", help="A note kept with the decision."),
) -> None:
    """Approve rules (only valid rules can be approved)."""
    queue = _queue()
    for rule_id in rule_ids:
        rule = queue.approve(rule_id, note)
        console.print(f"approved {rule.id}: {rule.title}", highlight=False)


@app.command("reject")
@cli_errors
def reject_command(
    rule_ids: list[int] = typer.Argument(..., help="One or more rule ids."),
    note: str | None = typer.Option(None, "--note", help="Why (kept with the decision)."),
) -> None:
    """Reject rules."""
    queue = _queue()
    for rule_id in rule_ids:
        rule = queue.reject(rule_id, note)
        console.print(f"rejected {rule.id}: {rule.title}", highlight=False)


@app.command("edit")
@cli_errors
def edit_command(
    rule_id: int = typer.Argument(..., help="The rule's id."),
    from_file: Path = typer.Option(..., "--file", "-f", help="The new YAML ('-' reads standard input)."),
) -> None:
    """Replace a rule's YAML; the new text is validated (and judged for novelty) again."""
    from ctistudio.sigma.rule_yaml import check_rule_text

    text = sys.stdin.read() if str(from_file) == "-" else _read(from_file)
    check_rule_text(text)  # an alias bomb or an oversized file is refused; the stored rule stays as it was
    rule = _queue().edit(rule_id, text)
    if rule.valid:
        console.print(f"rule {rule.id} updated: valid, verdict {rule.verdict or 'unchecked'}", highlight=False)
        return
    console.print(f"rule {rule.id} updated but [red]invalid[/]:", highlight=False)
    for error in rule.errors:
        console.print(f"  {error.get('location') or ''}: {error.get('message')}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", fix="Check the path.") from exc


@app.command("export")
@cli_errors
def export_command(
    destination: Path = typer.Argument(..., help="A folder for .yml files, or a file ending in .zip."),
    rule_ids: list[int] = typer.Option(None, "--rule", help="Only these approved rules (repeatable)."),
) -> None:
    """Write the approved rules as Sigma YAML files (or one zip)."""
    written = _queue().export(destination, rule_ids=rule_ids or None)
    for path in written:
        console.print(path, highlight=False)
    err_console.print(f"{len(written)} rule(s) exported")


@app.command("convert")
@cli_errors
def convert_command(
    rule_id: int = typer.Argument(..., help="The rule's id."),
    target: str = typer.Option("splunk", "--to", help=f"Query language: {TARGET_NAMES}."),
    as_json: bool = typer.Option(False, "--json", help="Print the conversion as JSON."),
) -> None:
    """Convert a rule to Splunk SPL or Elastic (Lucene, ES|QL, EQL) queries with pySigma."""
    conversion = _queue().convert(rule_id, target)
    if as_json:
        print_json(conversion)
        return
    for query in conversion.queries:
        sys.stdout.write(query + "\n")


@app.command("publish")
@cli_errors
def publish_command(
    repo: str = typer.Option(..., "--repo", help="The rules repository: a local path or a URL git can push to."),
    branch: str | None = typer.Option(
        None, "--branch", help="Branch to commit to (default: the repository's; with --pr: ctistudio/sigma-rules)."
    ),
    pr: str | None = typer.Option(None, "--pr", help="Also open a pull/merge request: github or gitlab."),
    project: str | None = typer.Option(
        None, "--pr-project", help="OWNER/NAME on the forge (default: read from the --repo URL)."
    ),
    rule_ids: list[int] = typer.Option(None, "--rule", help="Only these approved rules (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Commit the approved rules into a git repository in SigmaHQ's layout, push, optionally open a PR/MR.

    Rules the repository already has (same id, or a duplicate by the similarity index) are skipped;
    nothing new means no commit."""
    from pydantic import ValidationError

    from ctistudio.publish.service import PublishRequest, publish_approved
    from ctistudio.store import Store

    if pr is not None and pr not in ("github", "gitlab"):
        raise InvalidInput(f"--pr {pr!r} is not a forge ctistudio knows", fix="Use --pr github or --pr gitlab.")
    try:
        request = PublishRequest(repo=repo, branch=branch, pr=pr, project=project, rule_ids=rule_ids or None)
    except ValidationError as exc:
        where = ", ".join(f"--{e['loc'][0]}" for e in exc.errors() if e.get("loc"))
        raise InvalidInput(
            f"{where or 'the options'}: not a repository path/URL or branch name git accepts",
            fix="Give --repo as a path or URL (not starting with '-') and --branch as letters, digits, . _ / -.",
        ) from None
    with Store(settings()) as store:
        report = publish_approved(store, settings(), request)
    if as_json:
        print_json(report)
        return
    for item in report.published:
        console.print(f"added {item.path} ({item.title})", highlight=False)
    for skipped in report.skipped:
        console.print(f"[dim]skipped {skipped.title}: {skipped.reason}[/]", highlight=False)
    if report.commit is None:
        err_console.print(f"nothing new to publish to {report.repository} ({report.branch})")
        return
    err_console.print(f"commit {report.commit[:12]} pushed to {report.repository} ({report.branch})")
    if report.pull_request is not None:
        verb = "opened" if report.pull_request.created else "updated"
        err_console.print(f"{report.pull_request.forge} request {verb}: {report.pull_request.url}")
