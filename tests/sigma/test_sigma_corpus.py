"""The corpus: which files count, what is skipped, and cloning a rules repository with git (a local one)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ctistudio.sigma.corpus import clone_dir_name, clone_or_update, git_commit, load_corpus, rule_files
from ctistudio.sigma.errors import CorpusError
from ctistudio.sigma.similarity import SimilarityIndex

RULE = """title: {title}
id: {id}
logsource: {{category: process_creation, product: windows}}
detection:
    selection:
        Image|endswith: '\\{image}'
    condition: selection
level: high
"""


def write_rule(path: Path, title: str, image: str, rule_id: str = "00000000-0000-4000-8000-000000000001") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RULE.format(title=title, image=image, id=rule_id), encoding="utf-8")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "git",
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_sigmahq_layout_reads_rules_folders_only(tmp_path: Path) -> None:
    write_rule(tmp_path / "rules/windows/a.yml", "A", "a.exe")
    write_rule(tmp_path / "rules-emerging-threats/b.yml", "B", "b.exe")
    write_rule(tmp_path / "deprecated/windows/old.yml", "Old", "old.exe")
    write_rule(tmp_path / "rules/deprecated/old2.yml", "Old2", "old2.exe")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/config.yml").write_text("not: a rule\n", encoding="utf-8")
    names = [p.relative_to(tmp_path).as_posix() for p in rule_files(tmp_path)]
    assert names == ["rules/windows/a.yml", "rules-emerging-threats/b.yml"]


def test_plain_folder_and_skip_reasons(tmp_path: Path) -> None:
    write_rule(tmp_path / "mine/a.yml", "A", "a.exe")
    (tmp_path / "mine/broken.yml").write_text("title: [\n", encoding="utf-8")
    (tmp_path / "mine/correlation.yml").write_text("title: c\ncorrelation: {type: event_count}\n", encoding="utf-8")
    corpus = load_corpus(tmp_path)
    assert [r.path for r in corpus.rules] == ["mine/a.yml"]
    reasons = {s.path: s.reason for s in corpus.skipped}
    assert reasons["mine/broken.yml"].startswith("unreadable:")
    assert reasons["mine/correlation.yml"] == "no detection (not a detection rule)"
    assert corpus.commit is None


def test_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match=r"no \.yml rule files"):
        load_corpus(tmp_path / "empty")


def test_clone_then_update_a_local_repository(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git(upstream, "init", "-q")
    write_rule(upstream / "rules/windows/a.yml", "Alpha Tool Run", "alpha.exe")
    git(upstream, "add", ".")
    git(upstream, "commit", "-q", "-m", "first")
    first = git(upstream, "rev-parse", "HEAD")

    dest = tmp_path / "data/sigma/repos" / clone_dir_name(f"file://{upstream}")
    assert clone_or_update(f"file://{upstream}", dest) == first
    assert git_commit(dest) == first

    write_rule(upstream / "rules/windows/b.yml", "Beta Tool Run", "beta.exe", "00000000-0000-4000-8000-000000000002")
    git(upstream, "add", ".")
    git(upstream, "commit", "-q", "-m", "second")
    second = git(upstream, "rev-parse", "HEAD")
    assert clone_or_update(f"file://{upstream}", dest) == second

    index = SimilarityIndex.build(dest, corpus_url=f"file://{upstream}")
    assert index.info.corpus_commit == second and index.info.rules == 2
    assert index.info.corpus_url == f"file://{upstream}"
    assert index.similar((upstream / "rules/windows/b.yml").read_text(encoding="utf-8")).matches[0].title == (
        "Beta Tool Run"
    )


def test_clone_failures(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="git clone failed") as info:
        clone_or_update(f"file://{tmp_path}/no-such-repo", tmp_path / "dest")
    assert "--rules DIR" in (info.value.fix or "")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "x.txt").write_text("x", encoding="utf-8")
    with pytest.raises(CorpusError, match="is not a git clone"):
        clone_or_update(f"file://{tmp_path}/whatever", occupied)


def test_folder_inside_another_repository_has_no_commit(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    write_rule(tmp_path / "vendored/a.yml", "A", "a.exe")
    assert git_commit(tmp_path / "vendored") is None


def test_clone_dir_name() -> None:
    assert clone_dir_name("https://github.com/SigmaHQ/sigma.git") == "SigmaHQ-sigma"
    assert clone_dir_name("git@github.com:SigmaHQ/sigma") == "SigmaHQ-sigma"
