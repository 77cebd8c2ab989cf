"""The similarity engine against the real SigmaHQ snapshot: self-match, cosmetic rewrites, unrelated rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from ctistudio.sigma.errors import SigmaIndexInvalid, SigmaIndexMissing, SigmaRuleUnreadable
from ctistudio.sigma.similarity import SimilarityIndex

CERTUTIL = "rules/windows/process_creation/proc_creation_win_certutil_download.yml"
SAMPLE = [
    CERTUTIL,
    "rules/linux/process_creation/proc_creation_lnx_susp_java_children.yml",
    "rules/cloud/aws/cloudtrail/aws_ec2_disable_encryption.yml",
    "rules/windows/registry/registry_set/registry_set_disable_defender_firewall.yml",
    "rules/windows/powershell/powershell_script/posh_ps_potential_invoke_mimikatz.yml",
]


def load_rule(root: Path, relative: str) -> dict:
    return yaml.safe_load((root / relative).read_text(encoding="utf-8"))


def test_index_covers_the_snapshot(sigmahq_index: SimilarityIndex, sigmahq_rules: Path) -> None:
    info = sigmahq_index.info
    assert info.rules == 3757 and info.skipped == []
    assert info.corpus_path == str(sigmahq_rules.resolve())
    assert info.atoms > 10_000


@pytest.mark.parametrize("relative", SAMPLE)
def test_rule_finds_itself_first_with_score_one(
    sigmahq_index: SimilarityIndex, sigmahq_rules: Path, relative: str
) -> None:
    if not (sigmahq_rules / relative).is_file():
        pytest.fail(f"sample rule {relative} is missing from the snapshot")
    result = sigmahq_index.similar((sigmahq_rules / relative).read_text(encoding="utf-8"), top_k=5)
    best = result.matches[0]
    assert best.path == relative
    assert best.score == 1.0 and best.jaccard == 1.0 and best.same_hash and best.relation == "equivalent"
    assert result.verdict == "duplicate"
    assert all(m.score < 1.0 for m in result.matches[1:]) or result.matches[1].same_hash


def cosmetic_rewrite(rule: dict) -> dict:
    """The certutil rule, rewritten: identifiers renamed, keys and lists reordered, case changed, modifiers
    swapped for wildcards and the condition spelt out."""
    detection = rule["detection"]
    img = detection["selection_img"]
    http = detection["selection_http"]
    flags = detection["selection_flags"]
    rewritten = {
        "condition": "(sel_flags and sel_http) and sel_image",
        "sel_http": {"CommandLine": "*HTTP*"},
        "sel_image": [
            {"OriginalFileName": img[1]["OriginalFileName"].upper()},
            {"Image": "*" + img[0]["Image|endswith"]},
        ],
        "sel_flags": {"CommandLine": ["*" + v.upper() + "*" for v in reversed(flags["CommandLine|contains"])]},
    }
    assert http == {"CommandLine|contains": "http"}
    return {"detection": rewritten, "logsource": dict(reversed(list(rule["logsource"].items()))), "title": "Mine"}


def test_cosmetic_rewrite_is_still_a_duplicate(sigmahq_index: SimilarityIndex, sigmahq_rules: Path) -> None:
    original = load_rule(sigmahq_rules, CERTUTIL)
    rewritten = cosmetic_rewrite(original)
    assert rewritten["detection"] != original["detection"]
    text = yaml.safe_dump(rewritten, sort_keys=False)
    result = sigmahq_index.similar(text, top_k=3)
    best = result.matches[0]
    assert best.path == CERTUTIL and best.score == 1.0 and best.same_hash
    assert result.verdict == "duplicate"
    assert result.hash == sigmahq_index.similar(original).hash


def test_narrower_rule_is_a_subset_and_wider_rule_a_superset(
    sigmahq_index: SimilarityIndex, sigmahq_rules: Path
) -> None:
    rule = load_rule(sigmahq_rules, CERTUTIL)
    narrower = copy.deepcopy(rule)
    narrower["detection"]["selection_flags"]["CommandLine|contains"] = ["urlcache "]
    result = sigmahq_index.similar(narrower)
    match = next(m for m in result.matches if m.path == CERTUTIL)
    assert match.relation == "subset" and match.score < 1.0 and not match.same_hash
    wider = copy.deepcopy(rule)
    wider["detection"]["selection_flags"]["CommandLine|contains"].append("-split ")
    match = next(m for m in sigmahq_index.similar(wider).matches if m.path == CERTUTIL)
    assert match.relation == "superset"
    assert result.verdict in ("similar", "duplicate")


UNRELATED = """
title: Zorblax Loader Sideloads Its Plugin
logsource: {category: process_creation, product: windows}
detection:
    selection:
        Image|endswith: '\\zorblaxhost.exe'
        CommandLine|contains: '--plugin-quux=frobnicate'
    condition: selection
"""


def test_unrelated_rule_is_novel(sigmahq_index: SimilarityIndex) -> None:
    result = sigmahq_index.similar(UNRELATED)
    assert result.verdict == "novel"
    assert all(m.score < 0.5 for m in result.matches)


def test_same_detection_in_another_log_source_class_does_not_match(
    sigmahq_index: SimilarityIndex, sigmahq_rules: Path
) -> None:
    rule = load_rule(sigmahq_rules, CERTUTIL)
    rule["logsource"] = {"category": "file_event", "product": "windows"}
    result = sigmahq_index.similar(rule)
    assert all(m.path != CERTUTIL for m in result.matches)
    assert result.verdict == "novel"


def test_generic_product_matches_specific(sigmahq_index: SimilarityIndex, sigmahq_rules: Path) -> None:
    rule = load_rule(sigmahq_rules, CERTUTIL)
    rule["logsource"] = {"category": "process_creation"}  # no product: compatible with windows
    assert sigmahq_index.similar(rule).matches[0].path == CERTUTIL


@pytest.mark.parametrize("relative", SAMPLE)
def test_postings_walk_equals_full_scan(sigmahq_index: SimilarityIndex, sigmahq_rules: Path, relative: str) -> None:
    text = (sigmahq_rules / relative).read_text(encoding="utf-8")
    assert sigmahq_index.similar(text, 8) == sigmahq_index.similar_by_scan(text, 8)


def test_save_load_round_trip(sigmahq_index: SimilarityIndex, tmp_path: Path) -> None:
    path = sigmahq_index.save(tmp_path / "copy.json")
    again = SimilarityIndex.load(path)
    assert again.info == sigmahq_index.info and again.atoms == sigmahq_index.atoms
    assert again.similar(UNRELATED) == sigmahq_index.similar(UNRELATED)
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["info"]["format"] == "ctistudio-sigma-similarity" and payload["info"]["version"] == 1


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(SigmaIndexMissing, match="no Sigma similarity index") as missing:
        SimilarityIndex.load(tmp_path / "none.json")
    assert "ctistudio sigma index" in (missing.value.fix or "")
    (tmp_path / "old.json").write_text(
        json.dumps(
            {
                "info": {
                    "format": "ctistudio-sigma-similarity",
                    "version": 0,
                    "built_at": "x",
                    "build_seconds": 0,
                    "corpus_path": "/x",
                    "rules": 0,
                    "atoms": 0,
                },
                "atoms": [],
                "rules": [],
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(SigmaIndexInvalid, match="reads v1"):
        SimilarityIndex.load(tmp_path / "old.json")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SigmaIndexInvalid, match="unreadable"):
        SimilarityIndex.load(tmp_path / "bad.json")


def test_unreadable_query(sigmahq_index: SimilarityIndex) -> None:
    with pytest.raises(SigmaRuleUnreadable, match="not valid YAML"):
        sigmahq_index.similar("title: [")
    with pytest.raises(SigmaRuleUnreadable, match="cannot be compared"):
        sigmahq_index.similar("title: no detection\n")


GENERATED = """
title: Certutil Download via URLCache
logsource: {product: windows, category: process_creation}
detection:
    selection:
        NewProcessName|endswith: '\\\\certutil.exe'
        CommandLine|contains|all: ['urlcache', 'http']
    condition: selection
"""


def test_generated_near_duplicate_is_similar(sigmahq_index: SimilarityIndex) -> None:
    """Other field name (alias), other strings ('urlcache' vs 'urlcache '): not a duplicate, but similar."""
    result = sigmahq_index.similar(GENERATED)
    best = result.matches[0]
    assert best.path == CERTUTIL
    assert best.query_in_candidate >= 0.65 and best.score < 0.9
    assert "~commandline||urlcache" in best.shared_atoms
    assert result.verdict == "similar"


def test_wildcard_aware_subset(sigmahq_index: SimilarityIndex, sigmahq_rules: Path) -> None:
    rule = load_rule(sigmahq_rules, CERTUTIL)
    rule["detection"]["selection_flags"]["CommandLine|contains"] = ["urlcache -f "]  # inside 'urlcache '
    match = next(m for m in sigmahq_index.similar(rule).matches if m.path == CERTUTIL)
    assert match.relation == "subset"
    assert "commandline||*urlcache -f *" not in match.shared_atoms  # no exact atom in common there
