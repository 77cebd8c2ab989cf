"""``ctistudio articles``: list and show stored articles with their scores and evidence."""

from __future__ import annotations

import typer
from rich.table import Table

from ctistudio.cli.common import cli_errors, console, print_json, settings
from ctistudio.store import Store
from ctistudio.store.articles import ArticleFilter, article_as_dict, count_articles, get_article, list_articles

app = typer.Typer(help="Stored articles: list, show.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print JSON.")


@app.command("list")
@cli_errors
def list_command(
    status: str | None = typer.Option(None, "--status", help="new, duplicate, processed …"),
    source: str | None = typer.Option(None, "--source", help="Source id."),
    min_score: int | None = typer.Option(None, "--min-score", help="Minimum hunt score (0–100)."),
    platform: str | None = typer.Option(None, "--platform", help="windows, linux, macos or cloud."),
    search: str | None = typer.Option(None, "--search", help="Text in title or content."),
    no_duplicates: bool = typer.Option(False, "--no-duplicates", help="Hide duplicates."),
    order: str = typer.Option("newest", "--order", help="newest, published or hunt_score."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    offset: int = typer.Option(0, "--offset", min=0),
    as_json: bool = JsonOpt,
) -> None:
    """Articles, newest first (filters combine)."""
    filters = ArticleFilter(
        status=status,
        source_id=source,
        min_hunt_score=min_score,
        platform=platform,
        search=search,
        include_duplicates=not no_duplicates,
    )
    with Store(settings()).session() as session:
        if order not in ("newest", "published", "hunt_score"):
            from ctistudio.errors import InvalidInput

            raise InvalidInput(f"unknown order {order!r}", fix="Use --order newest, published or hunt_score.")
        total = count_articles(session, filters)
        rows = [article_as_dict(a) for a in list_articles(session, filters, limit=limit, offset=offset, order=order)]
    if as_json:
        print_json({"total": total, "articles": rows})
        return
    table = Table("id", "score", "platforms", "status", "published", "source", "title")
    for row in rows:
        status_text = row["status"] + (f" of {row['duplicate_of']}" if row["duplicate_of"] else "")
        table.add_row(
            str(row["id"]),
            str(row["hunt_score"]),
            ",".join(row["platforms"]),
            status_text,
            (row["published_at"] or "")[:10],
            row["source_id"] or row["origin"],
            row["title"][:80],
        )
    console.print(table)
    console.print(f"[dim]{len(rows)} of {total}[/]")


@app.command("show")
@cli_errors
def show_command(
    article_id: int,
    full: bool = typer.Option(False, "--full", help="Print the whole text (default: the first 1,500 chars)."),
    as_json: bool = JsonOpt,
) -> None:
    """One article: metadata, hunt score and platforms with their evidence, and the text."""
    with Store(settings()).session() as session:
        data = article_as_dict(get_article(session, article_id), content=True)
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{data['title']}[/]", highlight=False)
    console.print(f"{data['url'] or data['origin']}  published {data['published_at'] or '?'}", highlight=False)
    if data["duplicate_of"]:
        console.print(f"[yellow]duplicate of article {data['duplicate_of']}[/] ({data['duplicate_reason']})")
    console.print(f"hunt score [bold]{data['hunt_score']}[/]/100")
    for item in data["hunt_evidence"]:
        matches = "; ".join(item["matches"][:3])
        console.print(f"  {item['points']:+g} {item['signal']} ×{item['count']}: {matches}", highlight=False)
    console.print(f"platforms: {', '.join(data['platforms']) or 'none detected'}")
    for platform, items in data["platform_evidence"].items():
        found = "; ".join(m for item in items for m in item["matches"][:2])
        console.print(f"  {platform}: {found[:200]}", highlight=False)
    text = data["content"] if full else data["content"][:1500]
    console.print()
    console.print(text, markup=False, highlight=False)
