"""``ctistudio sources``: list, show, add, enable and disable CTI sources."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Table

from ctistudio.cli.common import cli_errors, console, print_json, settings
from ctistudio.ingest.service import IngestService
from ctistudio.ingest.sources_config import SourceEntry
from ctistudio.store import Store
from ctistudio.store.sources import (
    add_source,
    article_counts_by_source,
    check_as_dict,
    get_source,
    list_source_checks,
    list_sources,
    set_source_active,
    source_as_dict,
)

app = typer.Typer(help="CTI sources: list with health, add, enable, disable.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print JSON.")


def _store(sync: bool = True) -> Store:
    s = settings()
    store = Store(s)
    if sync:
        IngestService(store, s).sync_sources()
    return store


def _ago(value: str | None) -> str:
    if not value:
        return "never"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(value)).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


@app.command("list")
@cli_errors
def list_command(
    all_sources: bool = typer.Option(False, "--all", help="Include inactive sources."),
    as_json: bool = JsonOpt,
) -> None:
    """Sources with their health: last success, consecutive failures, response time, articles."""
    store = _store()
    with store.session() as session:
        counts = article_counts_by_source(session)
        sources = list_sources(session, active=None if all_sources else True)
        rows = [source_as_dict(s, article_count=counts.get(s.id, 0)) for s in sources]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "active", "last success", "failures", "ms", "articles", "last error")
    for row in rows:
        health = row["health"]
        table.add_row(
            row["id"],
            row["name"],
            "yes" if row["active"] else "no",
            _ago(health["last_success_at"]),
            str(health["consecutive_failures"]),
            f"{health['last_response_ms']:.0f}" if health["last_response_ms"] is not None else "",
            str(row["article_count"]),
            (health["last_error"] or "")[:60],
        )
    console.print(table)


@app.command("show")
@cli_errors
def show_command(source_id: str, as_json: bool = JsonOpt) -> None:
    """One source with its recent checks (and every refusal's reason)."""
    store = _store()
    with store.session() as session:
        data = source_as_dict(get_source(session, source_id))
        data["checks"] = [check_as_dict(c) for c in list_source_checks(session, source_id, limit=10)]
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{data['name']}[/] ({data['id']}) {data['rss_url'] or data['url']}", highlight=False)
    for check in data["checks"]:
        console.print(
            f"  {check['started_at']} {check['status']} http={check['http_status']} new={check['articles_new']} "
            f"dup={check['articles_duplicate']} skipped={check['articles_skipped']} {check['error'] or ''}",
            highlight=False,
        )
        for refused in check["details"].get("refused", []):
            console.print(f"    {refused['status']} {refused['url']}: {refused['reason']}", highlight=False)


@app.command("add")
@cli_errors
def add_command(
    source_id: str = typer.Argument(..., help="Short unique id (letters, digits, _ and -)."),
    name: str = typer.Option(..., "--name"),
    url: str = typer.Option(..., "--url", help="Home page of the source."),
    rss_url: str = typer.Option(..., "--rss-url", help="RSS or Atom feed URL."),
    frequency: int = typer.Option(3600, "--frequency", help="Seconds between checks (min 60)."),
    allowed_domain: list[str] = typer.Option([], "--allowed-domain", help="Only entries on these domains."),
    min_length: int = typer.Option(800, "--min-length", help="Minimum article text length (characters)."),
    as_json: bool = JsonOpt,
) -> None:
    """Add a source (stored in the database; sources.yaml is not modified)."""
    from pydantic import ValidationError

    from ctistudio.errors import InvalidInput

    try:
        entry = SourceEntry.model_validate(
            {
                "id": source_id,
                "name": name,
                "url": url,
                "rss_url": rss_url,
                "check_frequency": frequency,
                "config": {"allowed_domains": allowed_domain, "min_content_length": min_length},
            }
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"invalid source: {problems}", fix="Correct the option(s) named.") from exc
    store = _store()
    with store.session() as session:
        data = source_as_dict(add_source(session, entry.definition()))
    if as_json:
        print_json(data)
    else:
        console.print(f"added source {source_id}; `ctistudio ingest sources --source {source_id}` checks it now")


def _set_active(source_id: str, active: bool) -> None:
    store = _store()
    with store.session() as session:
        set_source_active(session, source_id, active)
    console.print(f"source {source_id} {'enabled' if active else 'disabled'}")


@app.command("disable")
@cli_errors
def disable_command(source_id: str) -> None:
    """Stop polling a source (kept disabled when sources.yaml is loaded again)."""
    _set_active(source_id, False)


@app.command("enable")
@cli_errors
def enable_command(source_id: str) -> None:
    """Poll a source again."""
    _set_active(source_id, True)
