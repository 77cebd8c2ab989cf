"""``ctistudio eval extract|sigma``: scoring on labelled sets, through the LM Studio double and offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from analyst_script import respond
from cli_helpers import in_process_cli

from ctistudio.pipeline.evals import score_sigma
from ctistudio.resources import demo_article

DEMO_URL = "https://example.org/ctistudio/demo/operation-paper-lantern"
ONENOTE = {
    "logsource": {"category": "process_creation", "product": "windows"},
    "level": "high",
    "detection": {
        "selection": {"ParentImage|endswith": "\\ONENOTE.EXE", "Image|endswith": "\\mshta.exe"},
        "condition": "selection",
    },
}
RUN_KEY = {
    "logsource": {"category": "registry_set", "product": "windows"},
    "level": "high",
    "detection": {"sel": {"TargetObject|endswith": "\\Run\\LanternUpdate"}, "condition": "sel"},
}
COMSVCS = {
    "logsource": {"category": "process_creation", "product": "windows"},
    "level": "high",
    "detection": {"selection": {"CommandLine|contains|all": ["comsvcs", "MiniDump"]}, "condition": "selection"},
}


def write_set(folder: Path, labels: list[dict]) -> Path:
    folder.mkdir(parents=True)
    article = {"url": DEMO_URL, "title": "Operation Paper Lantern", "content": demo_article(), "expected_count": 1}
    (folder / "articles.json").write_text(json.dumps([article]), encoding="utf-8")
    (folder / "ground_truth.json").write_text(json.dumps(labels), encoding="utf-8")
    return folder


def test_score_sigma_matches_log_sources_one_to_one_and_atoms_canonically():
    generated = [
        {  # the ONENOTE rule written differently: other identifier, case, contains-less field order
            "logsource": {"product": "windows", "category": "process_creation"},
            "detection": {
                "s": {"Image|endswith": "\\MSHTA.EXE", "ParentImage|endswith": "\\onenote.exe"},
                "condition": "s",
            },
        },
        {
            "logsource": {"product": "windows", "category": "process_creation"},
            "detection": {"s": {"CommandLine|contains": "whoami"}, "condition": "s"},
        },
    ]
    scores = score_sigma(generated, [ONENOTE, RUN_KEY])
    assert scores["logsource"].model_dump(include={"tp", "fp", "fn"}) == {"tp": 1, "fp": 1, "fn": 1}
    assert scores["atoms"].model_dump(include={"tp", "fp", "fn"}) == {"tp": 2, "fp": 1, "fn": 1}
    assert score_sigma([], [ONENOTE])["atoms"].recall == 0.0


def test_eval_extract_through_the_double_and_offline(lmstudio_double, store, tmp_path, monkeypatch):
    lmstudio_double.responder = respond
    folder = write_set(
        tmp_path / "cmdline",
        [{"url": DEMO_URL, "expected_items": ["cmd.exe /c whoami /all", "cmd.exe /c ipconfig /all"]}],
    )
    cli = in_process_cli(lmstudio_double, store, monkeypatch)
    result = cli("eval", "extract", "--set", str(folder), "--out", str(tmp_path / "reports"), "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    items = report["totals"]["items"]
    # the analyst selects whoami and the comsvcs dump and invents vssadmin (dropped); the floor's other 16
    # command lines stay (14 in the article, 4 of them run by cmd /c), so ipconfig is found too
    assert (items["tp"], items["fp"], items["fn"]) == (2, 16, 0) and report["mode"] == "model"
    assert report["articles"][0]["missed"] == []
    assert "hallucination guard dropped 1" in report["articles"][0]["notes"]
    assert report["extra"]["items"] == {"floor": 18, "confirmed": 2, "new": 0, "dropped": 1}
    assert report["extra"]["completion_tokens"] > 0
    markdown = (tmp_path / "reports" / "extract-cmdline.md").read_text()
    assert "| items | 0.111 | 1.000 | 0.200 | 2 | 16 | 0 |" in markdown
    assert json.loads((tmp_path / "reports" / "extract-cmdline.json").read_text())["target"] == "cmdline"

    offline = json.loads(cli("eval", "extract", "--set", str(folder), "--no-llm", "--json").stdout)
    assert offline["mode"] == "pattern" and offline["totals"]["items"]["recall"] == 1.0


def test_eval_sigma_through_the_double(lmstudio_double, store, tmp_path, monkeypatch):
    lmstudio_double.responder = respond
    folder = write_set(
        tmp_path / "sigma",
        [{"url": DEMO_URL, "expected_rule_count": 3, "expected_rules": [ONENOTE, RUN_KEY, COMSVCS]}],
    )
    cli = in_process_cli(lmstudio_double, store, monkeypatch)
    result = cli("eval", "sigma", "--set", str(folder), "--out", str(tmp_path / "reports"), "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    logsource, atoms = report["totals"]["logsource"], report["totals"]["atoms"]
    # the model's: 2 process_creation, 2 registry_set, 1 service, 1 dns; the floor's: 2 proxy, 3 network
    assert report["extra"]["generated_valid"] == 11 and report["extra"]["generated_floor"] == 5
    assert (logsource["tp"], logsource["fp"], logsource["fn"]) == (3, 8, 0)
    assert atoms["tp"] >= 2 and 0 < atoms["precision"] < 1 and 0 < atoms["recall"] < 1
    assert (tmp_path / "reports" / "sigma-sigma.md").read_text().startswith("# Eval sigma: sigma")


@pytest.mark.parametrize("name", ["cmdline", "registry_artifacts"])
def test_pattern_floor_on_the_shared_eval_sets(name, shared, lmstudio_double, store, tmp_path, monkeypatch):
    cli = in_process_cli(lmstudio_double, store, monkeypatch)
    result = cli(
        "eval", "extract", "--set", str(shared / "evalsets" / name), "--no-llm", "--json", "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.stderr
    items = json.loads(result.stdout)["totals"]["items"]
    assert items["tp"] > 0 and items["precision"] > 0.2 and items["recall"] > 0.3  # a floor, not the goal
