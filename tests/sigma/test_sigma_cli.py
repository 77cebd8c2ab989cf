"""``ctistudio sigma …`` end to end: in-process for validate/convert, real subprocesses for index/similar."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ctistudio.cli.main import app

DATA = Path(__file__).parent / "data"


def ctistudio(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process (its own settings, from this test's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "ctistudio.cli.main", *args],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_validate_valid_and_invalid(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["sigma", "validate", str(DATA / "valid_rule.yml")])
    assert ok.exit_code == 0, ok.output
    assert "valid" in ok.stdout
    broken = tmp_path / "broken.yml"
    broken.write_text((DATA / "valid_rule.yml").read_text().replace("level: high\n", ""), encoding="utf-8")
    bad = runner.invoke(app, ["sigma", "validate", str(broken), "--json"])
    assert bad.exit_code == 1
    payload = json.loads(bad.stdout)
    assert payload["valid"] is False
    assert [(i["code"], i["location"]) for i in payload["issues"]] == [("missing_field", "level")]
    assert "not a valid rule (1 error(s))" in bad.stderr


def test_convert_prints_the_query() -> None:
    result = CliRunner().invoke(app, ["sigma", "convert", str(DATA / "valid_rule.yml"), "--to", "splunk"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().startswith('Image="*\\\\certutil.exe"')
    unknown = CliRunner().invoke(app, ["sigma", "convert", str(DATA / "valid_rule.yml"), "--to", "qradar"])
    assert unknown.exit_code == 1 and "unknown conversion target 'qradar'" in unknown.stderr


def test_missing_rule_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["sigma", "validate", str(tmp_path / "nope.yml")])
    assert result.exit_code == 1 and "does not exist" in result.stderr


def test_index_from_git_then_similar(tmp_path: Path, sigmahq_rules: Path) -> None:
    upstream = tmp_path / "upstream"
    rules = upstream / "rules/windows/process_creation"
    rules.mkdir(parents=True)
    for name in ("proc_creation_win_certutil_download.yml", "proc_creation_win_certutil_encode.yml"):
        source = sigmahq_rules / "rules/windows/process_creation" / name
        (rules / name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=upstream, check=True)
    subprocess.run([*git, "add", "."], cwd=upstream, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "rules"], cwd=upstream, check=True)

    built = ctistudio("sigma", "index", "--git", f"file://{upstream}", "--no-embeddings", "--json", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    data_dir = Path(os.environ["CTISTUDIO_DATA_DIR"])
    assert summary["path"] == str(data_dir / "sigma" / "similarity-index.json")
    assert summary["rules"] == 2 and summary["corpus_url"] == f"file://{upstream}"
    assert summary["corpus_path"].startswith(str(data_dir / "sigma" / "repos"))
    assert len(summary["corpus_commit"]) == 40

    query = rules / "proc_creation_win_certutil_download.yml"
    similar = ctistudio("sigma", "similar", str(query), "--top", "2", "--json", cwd=tmp_path)
    assert similar.returncode == 0, similar.stderr
    result = json.loads(similar.stdout)
    assert result["verdict"] == "duplicate"
    assert result["matches"][0]["path"] == "rules/windows/process_creation/proc_creation_win_certutil_download.yml"
    assert result["matches"][0]["score"] == 1.0

    table = ctistudio("sigma", "similar", str(query), cwd=tmp_path)
    assert table.returncode == 0 and table.stdout.startswith("duplicate: duplicate of rules/windows")


def test_similar_without_index_says_how_to_build_one(tmp_path: Path) -> None:
    args = ["sigma", "similar", str(DATA / "valid_rule.yml"), "--index", str(tmp_path / "none.json")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "no Sigma similarity index" in result.stderr and "ctistudio sigma index" in result.stderr


def test_index_needs_one_source(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["sigma", "index", "--index", str(tmp_path / "i.json")])
    assert result.exit_code == 1 and "CTISTUDIO_SIGMA_RULES_DIR" in result.stderr
    both = CliRunner().invoke(app, ["sigma", "index", "--rules", str(tmp_path), "--git", "file:///x"])
    assert both.exit_code == 1 and "exclude each other" in both.stderr


def test_index_a_folder_in_process(tmp_path: Path, sigmahq_rules: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    source = sigmahq_rules / "rules/windows/process_creation/proc_creation_win_certutil_download.yml"
    (folder / "a.yml").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "b.yml").write_text("title: [\n", encoding="utf-8")
    out = tmp_path / "index.json"
    result = CliRunner().invoke(app, ["sigma", "index", "--rules", str(folder), "--index", str(out), "--no-embeddings"])
    assert result.exit_code == 0, result.output
    assert "indexed 1 rules" in result.stdout and "skipped 1 file(s), e.g. b.yml: unreadable" in result.stdout
    assert json.loads(out.read_text(encoding="utf-8"))["info"]["rules"] == 1
