"""The reference rule corpus: read a folder of Sigma rules, or clone SigmaHQ (or any rules repository) with git.

ctistudio never ships SigmaHQ's rules: the user names a folder (``--rules DIR`` or
``CTISTUDIO_SIGMA_RULES_DIR``) or lets ``ctistudio sigma index --git URL`` clone one under the data folder.

Which files count: every ``*.yml``/``*.yaml`` below the folder; when the folder is a SigmaHQ checkout (it has
``rules*`` sub-folders) only those are read. Folders named ``deprecated`` or ``unsupported`` are skipped.
Documents without a detection (correlation rules, filters) are listed as skipped, with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ctistudio.safe_yaml import load_yaml_documents
from ctistudio.sigma.errors import CorpusError
from ctistudio.sigma.rule_yaml import RULE_LIMITS

SKIPPED_FOLDERS = {"deprecated", "unsupported", ".git", ".github"}
Progress = Callable[[int, int], None]

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class CorpusRule:
    path: str  # relative to the corpus root, with forward slashes
    rule: dict[str, Any]


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class Corpus:
    root: Path
    rules: list[CorpusRule] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    commit: str | None = None


def rule_files(root: Path) -> list[Path]:
    """The rule files below ``root`` in a stable order (see the module docstring for what counts)."""
    if not root.is_dir():
        raise CorpusError(
            f"the rules folder {root} does not exist",
            fix="Pass --rules with a folder of Sigma rules (e.g. a SigmaHQ checkout), or --git URL to clone one.",
        )
    tops = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("rules"))
    bases = tops or [root]
    files: list[Path] = []
    for base in bases:
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_FOLDERS)
            files.extend(Path(dirpath, name) for name in sorted(filenames) if name.endswith((".yml", ".yaml")))
    return files


def load_corpus(root: Path, progress: Progress | None = None) -> Corpus:
    """Read every rule below ``root``; unreadable files are listed in ``skipped`` with the reason."""
    root = root.expanduser().resolve()
    files = rule_files(root)
    if not files:
        raise CorpusError(
            f"no .yml rule files found in {root}",
            fix="Point --rules at a folder that holds Sigma rules (for SigmaHQ: the repository root).",
        )
    corpus = Corpus(root=root, commit=git_commit(root))
    for done, path in enumerate(files, start=1):
        relative = path.relative_to(root).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
            documents = load_yaml_documents(text, limits=RULE_LIMITS, loader=_Loader, what=relative)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            corpus.skipped.append(SkippedFile(relative, f"unreadable: {str(exc).splitlines()[0]}"))
        else:
            rules = [d for d in documents if isinstance(d, dict) and isinstance(d.get("detection"), dict)]
            if not rules:
                corpus.skipped.append(SkippedFile(relative, "no detection (not a detection rule)"))
            for index, rule in enumerate(rules):
                suffix = f"#{index + 1}" if len(rules) > 1 else ""
                corpus.rules.append(CorpusRule(relative + suffix, rule))
        if progress is not None:
            progress(done, len(files))
    return corpus


def _git(args: list[str], cwd: Path | None = None, timeout: float = 900) -> str:
    if shutil.which("git") is None:
        raise CorpusError("git is not installed", fix="Install git (apt-get install git), or pass --rules DIR instead.")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # never wait for credentials
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise CorpusError(f"git {args[0]} timed out after {timeout:.0f}s", fix="Check the network and retry.") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise CorpusError(
            f"git {' '.join(args[:1])} failed: {detail[-1] if detail else f'exit code {done.returncode}'}",
            fix="Check the repository URL and your network, or clone it yourself and pass --rules DIR.",
        )
    return done.stdout.strip()


def git_commit(root: Path) -> str | None:
    """The checked-out commit when ``root`` is inside a git work tree, else None."""
    if shutil.which("git") is None or not root.is_dir():
        return None
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    top = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True, timeout=30, check=False
    )
    # a folder inside someone else's repository (e.g. a vendored copy) is not "a checkout of the corpus"
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root.resolve():
        return None
    return done.stdout.strip() or None


def clone_dir_name(url: str) -> str:
    """A folder name for a repository URL: ``https://github.com/SigmaHQ/sigma.git`` → ``SigmaHQ-sigma``."""
    cleaned = re.sub(r"\.git/?$", "", url.rstrip("/"))
    parts = [p for p in re.split(r"[/:]", cleaned) if p]
    name = "-".join(parts[-2:]) if len(parts) >= 2 else (parts[-1] if parts else "rules")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def clone_or_update(url: str, dest: Path) -> str:
    """Shallow-clone ``url`` into ``dest`` (or fast-forward an existing clone); return the commit."""
    if (dest / ".git").is_dir():
        _git(["pull", "--ff-only", "--quiet"], cwd=dest)
    elif dest.exists() and any(dest.iterdir()):
        raise CorpusError(
            f"{dest} exists and is not a git clone",
            fix=f"Remove {dest} or pass --rules {dest} to index it as a plain folder.",
        )
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _git(["clone", "--depth", "1", "--quiet", url, str(dest)])
    return _git(["rev-parse", "HEAD"], cwd=dest)
