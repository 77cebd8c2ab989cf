"""``ctistudio export``: STIX 2.1 bundles, MISP events (or a CSV list of indicators) and ATT&CK Navigator layers.

Each command takes what to export — ``--article N``, ``--run N`` or ``--approved`` — and writes to
``--output FILE`` (standard output when omitted or ``-``); a one-line summary goes to standard error.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ctistudio.cli.common import cli_errors, err_console, settings
from ctistudio.errors import InvalidInput

if TYPE_CHECKING:  # the store and the exporters are imported when a command runs, not at start-up
    from ctistudio.export import ExportDocument, ExportSet

app = typer.Typer(help="Export what ctistudio found: STIX 2.1, MISP (or a CSV list of IOCs), ATT&CK Navigator.")

ArticleOption = typer.Option(None, "--article", help="Export this article (its latest run's findings).")
RunOption = typer.Option(None, "--run", help="Export this pipeline run.")
ApprovedOption = typer.Option(False, "--approved", help="Export every approved rule (and where it came from).")
OutputOption = typer.Option(None, "--output", "-o", help="Write to this file ('-' or omitted: standard output).")


def _selection(article: int | None, run_id: int | None, approved: bool) -> ExportSet:
    from ctistudio.export import collect
    from ctistudio.store import Store

    with Store(settings()) as store:
        return collect(store, article_id=article, run_id=run_id, approved=approved)


def _write(document: ExportDocument, output: Path | None) -> None:
    if output is None or str(output) == "-":
        sys.stdout.write(document.text if document.text.endswith("\n") else document.text + "\n")
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(document.text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(
            f"cannot write {output}: {exc.strerror}", fix="Choose a writable path with --output, or '-' for stdout."
        ) from exc
    err_console.print(f"wrote {output}", highlight=False)


@app.command("stix")
@cli_errors
def stix_command(
    article: int | None = ArticleOption,
    run_id: int | None = RunOption,
    approved: bool = ApprovedOption,
    output: Path | None = OutputOption,
) -> None:
    """A STIX 2.1 bundle: report, indicators (STIX patterns and Sigma rules), ATT&CK attack patterns."""
    from ctistudio.export import render
    from ctistudio.export.stix import bundle_counts, stix_problems

    document = render(_selection(article, run_id, approved), "stix")
    checked = ""
    if importlib.util.find_spec("stix2validator") is not None:  # installed with the development dependencies
        errors, warnings = stix_problems(document.text)
        if errors:  # never hand out a bundle OASIS's validator refuses
            raise RuntimeError("the STIX bundle does not validate: " + "; ".join(errors[:5]))
        checked = f"; stix2-validator: valid ({len(warnings)} best-practice warnings)"
    _write(document, output)
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(bundle_counts(document.text).items()))
    err_console.print(f"STIX 2.1 bundle: {counts}{checked}")


@app.command("misp")
@cli_errors
def misp_command(
    article: int | None = ArticleOption,
    run_id: int | None = RunOption,
    approved: bool = ApprovedOption,
    as_csv: bool = typer.Option(False, "--csv", help="A plain CSV list of the indicators instead of the event."),
    output: Path | None = OutputOption,
) -> None:
    """A MISP event (typed attributes, Sigma rules as sigma attributes, ATT&CK galaxy tags), or --csv."""
    from ctistudio.export import render

    document = render(_selection(article, run_id, approved), "csv" if as_csv else "misp")
    _write(document, output)
    if as_csv:
        err_console.print(f"{document.text.count(chr(10)) - 1} indicator(s)")
        return
    from pymisp import MISPEvent

    event = MISPEvent()
    event.load(document.text)
    kinds: dict[str, int] = {}
    for attribute in event.attributes:
        kinds[attribute.type] = kinds.get(attribute.type, 0) + 1
    err_console.print("MISP event: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))


@app.command("navigator")
@cli_errors
def navigator_command(
    article: int | None = ArticleOption,
    run_id: int | None = RunOption,
    approved: bool = ApprovedOption,
    output: Path | None = OutputOption,
) -> None:
    """An ATT&CK Navigator layer (format 4.5) scoring techniques by rule count (default: approved rules)."""
    from ctistudio.export import render

    if article is None and run_id is None:
        approved = True
    document = render(_selection(article, run_id, approved), "navigator")
    _write(document, output)
    err_console.print(f"Navigator layer 4.5: {document.text.count('techniqueID')} technique(s) scored")
