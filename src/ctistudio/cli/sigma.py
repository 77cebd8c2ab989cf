"""``ctistudio sigma``: build the SigmaHQ similarity index, check a rule's novelty, validate, convert."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ctistudio.cli.common import cli_errors, console, err_console, fail, print_json, run, settings
from ctistudio.errors import ConfigurationError, CtiStudioError, InvalidInput, NotFound

if TYPE_CHECKING:
    from ctistudio.sigma.similarity import SimilarityIndex
    from ctistudio.sigma.similarity.embeddings import RuleEmbeddings

app = typer.Typer(help="Sigma rules: similarity to SigmaHQ, validation with pySigma, conversion.", no_args_is_help=True)

JsonOpt = typer.Option(False, "--json", help="Print the result as JSON (stable keys).")
IndexOpt = typer.Option(None, "--index", help="Index file (default: <CTISTUDIO_DATA_DIR>/sigma/similarity-index.json).")
SIGMAHQ_URL = "https://github.com/SigmaHQ/sigma"


def _read_rule(path: Path) -> str:
    if not path.is_file():
        raise NotFound(f"rule file {path} does not exist", fix="Pass the path of a Sigma rule .yml file.")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", fix="Save the rule as UTF-8 text.") from exc


def _progress(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


def _embed_corpus(built: SimilarityIndex, path: Path) -> dict[str, object]:
    """Embed every indexed rule through the embedding provider and save the vectors beside the index."""
    from ctistudio.llm import Gateway
    from ctistudio.sigma.similarity.embeddings import embed_index

    async def go() -> RuleEmbeddings:
        async with Gateway(settings()) as gateway:
            with _progress("embedding") as bar:
                task = bar.add_task("rules", total=len(built.rules))
                return await embed_index(gateway, built, progress=lambda done, total: bar.update(task, completed=done))

    try:
        embeddings = run(go())
    except CtiStudioError as exc:
        raise CtiStudioError(
            f"the atom index was saved to {path}, but embedding the rules failed: {exc.message}",
            fix=f"{exc.fix + ' ' if exc.fix else ''}Or build the atom index alone with --no-embeddings.",
        ) from exc
    built.attach_embeddings(embeddings)
    built.save(path)
    return {"model": embeddings.model, "provider": embeddings.provider, "dimensions": embeddings.dimensions}


def _rules_source(rules: Path | None, git: str | None) -> tuple[Path, str | None]:
    """The folder to index and the repository URL it came from (cloning or updating it first)."""
    from ctistudio.sigma.corpus import clone_dir_name, clone_or_update

    s = settings()
    if rules is not None and git is not None:
        raise InvalidInput("--rules and --git exclude each other", fix="Pass one of them.")
    if git is not None:
        dest = s.data_dir / "sigma" / "repos" / clone_dir_name(git)
        with err_console.status(f"git: fetching {git} into {dest} …"):
            commit = clone_or_update(git, dest)
        err_console.print(f"[green]✔[/] {git} at {commit[:12]}", highlight=False)
        return dest, git
    folder = rules or s.sigma_rules_dir
    if folder is None:
        raise ConfigurationError(
            "no Sigma rules folder given",
            fix=f"Pass --rules DIR, --git {SIGMAHQ_URL}, or set CTISTUDIO_SIGMA_RULES_DIR.",
        )
    return folder.expanduser(), None


@app.command("index")
@cli_errors
def index_command(
    rules: Path | None = typer.Option(
        None, "--rules", help="Folder of Sigma rules (default: CTISTUDIO_SIGMA_RULES_DIR)."
    ),
    git: str | None = typer.Option(None, "--git", help=f"Clone (or update) a rules repository, e.g. {SIGMAHQ_URL}."),
    no_embeddings: bool = typer.Option(False, "--no-embeddings", help="Build the atom index only."),
    index: Path | None = IndexOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Build the similarity index (atoms, DNF, inverted index) over a rules folder or a git clone."""
    from ctistudio.sigma.similarity import SimilarityIndex, default_index_path

    folder, url = _rules_source(rules, git)
    with _progress("indexing") as bar:
        task = bar.add_task("rules", total=None)
        built = SimilarityIndex.build(
            folder, progress=lambda done, total: bar.update(task, completed=done, total=total), corpus_url=url
        )
    path = built.save(index or default_index_path(settings()))
    summary = {"path": str(path), **built.info.model_dump(mode="json"), "embeddings": None}
    summary["skipped_count"] = len(built.info.skipped)
    if not no_embeddings:
        summary["embeddings"] = _embed_corpus(built, path)
    if as_json:
        print_json(summary)
        return
    commit = f" at {built.info.corpus_commit[:12]}" if built.info.corpus_commit else ""
    console.print(
        f"[green]✔[/] indexed {built.info.rules:,} rules ({built.info.atoms:,} atoms) from {built.info.corpus_path}"
        f"{commit} in {built.info.build_seconds:.1f}s → {path}",
        highlight=False,
    )
    if summary["embeddings"]:
        emb = summary["embeddings"]
        console.print(
            f"[green]✔[/] embedded the rules with {emb['model']} ({emb['provider']}, {emb['dimensions']} dimensions)"
        )
    if built.info.skipped:
        console.print(
            f"  skipped {len(built.info.skipped)} file(s), e.g. {built.info.skipped[0]['path']}: "
            f"{built.info.skipped[0]['reason']}",
            highlight=False,
        )


@app.command("similar")
@cli_errors
def similar_command(
    rule_file: Path = typer.Argument(..., help="Sigma rule (.yml) to compare with the indexed corpus."),
    top: int = typer.Option(5, "--top", "-k", min=1, max=100, help="How many similar rules to show."),
    semantic: bool = typer.Option(
        False, "--semantic", help="Also list the nearest rules by embedding (needs the embedding provider)."
    ),
    index: Path | None = IndexOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Verdict (duplicate / similar / novel) and the most similar corpus rules, with scores."""
    from ctistudio.sigma.similarity import SimilarityIndex, default_index_path

    text = _read_rule(rule_file)
    loaded = SimilarityIndex.load(index or default_index_path(settings()))
    vector = _embed_query(loaded, text) if semantic else None
    result = loaded.similar(text, top_k=top, query_vector=vector)
    if as_json:
        print_json(result)
        return
    colour = {"duplicate": "red", "similar": "yellow", "novel": "green"}[result.verdict]
    console.print(f"[bold {colour}]{result.verdict}[/]: {result.reason}", highlight=False, soft_wrap=True)
    console.print(
        f"[dim]log source {result.logsource} · {result.atoms} atoms · "
        f"{result.dnf_clauses if result.dnf_clauses is not None else 'over-cap'} DNF clauses[/]",
        highlight=False,
    )
    for note in result.notes:
        console.print(f"[dim]note: {note}[/]", highlight=False)
    if result.matches:
        table = Table("score", "jaccard", "relation", "verdict", "rule", "title")
        table.columns[4].overflow = "fold"
        for match in result.matches:
            table.add_row(
                f"{match.score:.2f}", f"{match.jaccard:.2f}", match.relation, match.verdict, match.path, match.title
            )
        console.print(table)
    if result.semantic:
        table = Table("cosine", "rule", "title", title=f"nearest by embedding ({result.embedding_model})")
        table.columns[1].overflow = "fold"
        for near in result.semantic:
            table.add_row(f"{near.cosine:.2f}", near.path, near.title)
        console.print(table)


def _embed_query(loaded: SimilarityIndex, text: str) -> list[float]:
    from ctistudio.llm import Gateway
    from ctistudio.sigma.similarity.embeddings import embed_rule

    if loaded.embeddings is None:
        raise NotFound(
            loaded.embeddings_note or "the index has no rule embeddings",
            fix="Rebuild it without --no-embeddings: ctistudio sigma index --rules DIR.",
        )

    async def go() -> list[float]:
        async with Gateway(settings()) as gateway:
            return await embed_rule(gateway, text, loaded)

    return run(go())


@app.command("validate")
@cli_errors
def validate_command(
    rule_file: Path = typer.Argument(..., help="Sigma rule (.yml) to validate."),
    as_json: bool = JsonOpt,
) -> None:
    """Validate a rule (YAML, required fields, pySigma parsing and validators, ATT&CK tags offline)."""
    from ctistudio.sigma import validate_rule

    result = validate_rule(_read_rule(rule_file))
    if as_json:
        print_json(result.model_dump(mode="json", exclude={"normalized_yaml"}))
    else:
        for issue in result.issues:
            colour = {"error": "red", "warning": "yellow", "info": "dim"}[issue.severity]
            console.print(f"[{colour}]{issue.render()}[/]", highlight=False, soft_wrap=True)
        if result.valid:
            console.print(f"[green]✔ valid[/] ({len(result.issues)} non-blocking issue(s))", highlight=False)
    if not result.valid:
        raise fail(f"{rule_file} is not a valid rule ({len(result.errors)} error(s))", "Fix the errors listed above.")


@app.command("convert")
@cli_errors
def convert_command(
    rule_file: Path = typer.Argument(..., help="Sigma rule (.yml) to convert."),
    to: str = typer.Option(..., "--to", help="Target: splunk, elastic (Lucene), esql or eql."),
    as_json: bool = JsonOpt,
) -> None:
    """Convert a rule to a Splunk or Elastic query with pySigma's backends."""
    from ctistudio.sigma import convert

    result = convert(_read_rule(rule_file), to)
    if as_json:
        print_json(result)
        return
    for query in result.queries:
        typer.echo(query)
