"""The SigmaHQ layout table agrees with the SigmaHQ snapshot in shared/: each folder exists and its rules
carry the prefix."""

from __future__ import annotations

from pathlib import Path

from ctistudio.publish.layout import LAYOUT, rule_path


def test_every_layout_entry_matches_the_sigmahq_snapshot(shared: Path):
    root = shared / "sigmahq"
    for key, (folder, prefix) in LAYOUT.items():
        files = [p.name for p in (root / folder).rglob("*.yml")]
        assert files, f"{key}: {folder} has no rules in the SigmaHQ snapshot"
        matching = sum(name.startswith(prefix) for name in files)
        assert matching >= len(files) * 0.8, f"{key}: only {matching}/{len(files)} files in {folder} start {prefix}"


def test_rule_paths_follow_the_naming_convention():
    assert rule_path({"product": "windows", "category": "process_creation"}, "Windows Mshta From OneNote!") == (
        "rules/windows/process_creation/proc_creation_win_mshta_from_onenote.yml"
    )
    assert rule_path({"product": "zeek", "service": "http"}, "Odd Beacon") == "rules/zeek/http/http_zeek_odd_beacon.yml"
