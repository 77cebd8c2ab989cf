"""``ctistudio export``: files written, summaries on stderr, and bad input refused with a fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctistudio.cli.main import app
from ctistudio.export.stix import stix_problems


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def test_export_commands_write_valid_files(cli, demo_run: int, tmp_path: Path):
    stix = cli("export", "stix", "--run", str(demo_run), "-o", str(tmp_path / "bundle.json"))
    assert stix.exit_code == 0, stix.stderr
    assert "stix2-validator: valid" in stix.stderr and "5 indicator" in stix.stderr
    assert stix_problems((tmp_path / "bundle.json").read_text())[0] == []

    misp = cli("export", "misp", "--run", str(demo_run))
    assert misp.exit_code == 0, misp.stderr
    assert json.loads(misp.stdout)["info"].startswith("Operation Paper Lantern")
    assert "2 sigma" in misp.stderr

    iocs = cli("export", "misp", "--run", str(demo_run), "--csv")
    assert iocs.exit_code == 0 and iocs.stdout.splitlines()[0] == "type,value,category,to_ids,comment,article"

    layer = cli("export", "navigator", "--run", str(demo_run))
    assert layer.exit_code == 0, layer.stderr
    assert {t["techniqueID"] for t in json.loads(layer.stdout)["techniques"]} == {"T1566.001", "T1218.005", "T1547.001"}


def test_export_refuses_bad_input_with_a_fix(cli, store, demo_article_id: int, tmp_path: Path):
    unknown = cli("export", "stix", "--article", "999")
    assert unknown.exit_code == 1
    assert "no article with id 999" in unknown.stderr and "fix:" in unknown.stderr
    not_run = cli("export", "misp", "--article", str(demo_article_id))
    assert not_run.exit_code == 1 and f"ctistudio run --article {demo_article_id}" in not_run.stderr
    nothing_approved = cli("export", "navigator")
    assert nothing_approved.exit_code == 1 and "no approved rules" in nothing_approved.stderr
    neither = cli("export", "stix")
    assert neither.exit_code == 1 and "--article N, --run N or --approved" in neither.stderr


def test_export_help_names_the_selections(cli):
    for command in ("stix", "misp", "navigator"):
        shown = cli("export", command, "--help")
        assert shown.exit_code == 0 and "--article" in shown.stdout and "--approved" in shown.stdout
