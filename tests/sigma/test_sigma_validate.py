"""validate_rule: YAML, required fields, pySigma parsing, condition, validators, offline ATT&CK tags."""

from __future__ import annotations

from pathlib import Path

from ctistudio.sigma import validate_rule
from ctistudio.sigma.attack import install_offline_attack_data


def issue_codes(result) -> list[tuple[str, str, str | None]]:
    return [(i.severity, i.code, i.location) for i in result.issues]


def test_complete_rule_is_valid_without_issues(valid_rule_text: str) -> None:
    result = validate_rule(valid_rule_text)
    assert result.valid, result.feedback()
    assert result.issues == []
    assert result.attack_version == "18.1"
    assert result.rule is not None and result.rule["date"] == "2025-01-31"  # dates stay strings
    assert result.normalized_yaml is not None and result.normalized_yaml.startswith("title: Certutil")
    assert any(s.startswith("d3_fendtag") for s in result.checks_skipped)


def test_sigmahq_rule_is_valid(certutil_rule_path: Path) -> None:
    result = validate_rule(certutil_rule_path.read_text(encoding="utf-8"))
    assert result.valid, result.feedback()
    assert not result.errors


def test_missing_fields_are_each_reported_with_a_fix(valid_rule_text: str) -> None:
    text = valid_rule_text.replace("author: ctistudio\n", "").replace("level: high\n", "")
    text = text.replace("falsepositives:\n    - Administrators downloading certificates\n", "")
    result = validate_rule(text)
    assert not result.valid
    missing = [(i.code, i.location) for i in result.errors]
    assert missing == [("missing_field", "author"), ("missing_field", "falsepositives"), ("missing_field", "level")]
    assert "falsepositives: [" in result.errors[1].message  # says what to write
    assert "missing required field 'level'" in result.feedback()


def test_bad_values_of_required_fields(valid_rule_text: str) -> None:
    text = (
        valid_rule_text.replace("status: experimental", "status: production")
        .replace("level: high", "level: severe")
        .replace("date: 2025-01-31", "date: 2025-02-30")
        .replace("id: 6b0e7c5a-3d3f-4b5e-9f0e-2f1f6d2b8a11", "id: 1234")
    )
    result = validate_rule(text)
    by_code = {i.code: i for i in result.errors}
    assert set(by_code) == {"invalid_status", "invalid_level", "invalid_id", "pysigma_date"}
    assert "use one of: stable, test, experimental, deprecated, unsupported" in by_code["invalid_status"].message
    assert by_code["invalid_level"].line == 25
    assert by_code["pysigma_date"].location == "date" and "2025-02-30" in by_code["pysigma_date"].message


def test_yaml_syntax_error_has_line_and_column(valid_rule_text: str) -> None:
    text = valid_rule_text.replace("- 'verifyctl'", "- 'verifyctl\n    broken: [")
    result = validate_rule(text)
    assert not result.valid and result.rule is None
    [issue] = result.issues
    assert issue.code == "yaml_syntax" and issue.source == "yaml"
    assert issue.line is not None and issue.line >= 20
    assert issue.column is not None
    assert f"line {issue.line}" in issue.message


def test_duplicate_key_is_a_yaml_error_with_its_line(valid_rule_text: str) -> None:
    text = valid_rule_text.replace("level: high\n", "level: high\nlevel: low\n")
    [issue] = validate_rule(text).issues
    assert issue.code == "yaml_syntax" and "duplicate key 'level'" in issue.message and issue.line == 26


def test_not_a_single_mapping() -> None:
    assert [i.code for i in validate_rule("- a\n- b\n").issues] == ["not_a_mapping"]
    assert [i.code for i in validate_rule("title: a\n---\ntitle: b\n").issues] == ["document_count"]
    assert [i.code for i in validate_rule("   \n").issues] == ["empty"]


def test_broken_condition_is_reported_not_crashed(valid_rule_text: str) -> None:
    text = valid_rule_text.replace("condition: all of selection_*", "condition: selection_img and (selection_cli")
    result = validate_rule(text)
    assert issue_codes(result) == [("error", "invalid_condition", "detection.condition")]
    assert result.issues[0].line == 22
    assert "Unbalanced parentheses" in result.issues[0].message


def test_condition_naming_an_undefined_detection(valid_rule_text: str) -> None:
    text = valid_rule_text.replace("condition: all of selection_*", "condition: selection_img and filter_main")
    [issue] = validate_rule(text).issues
    assert issue.code == "invalid_condition" and "'filter_main' not defined" in issue.message


def test_unknown_modifier_points_at_the_key(valid_rule_text: str) -> None:
    text = valid_rule_text.replace("CommandLine|contains:", "CommandLine|contans:")
    [issue] = validate_rule(text).issues
    assert issue.code == "pysigma_modifier"
    assert issue.location == "detection.selection_cli.CommandLine|contans" and issue.line == 19
    assert "Unknown modifier 'contans'" in issue.message and "contains" in issue.message


def test_dangling_detection_from_pysigma_validator(valid_rule_text: str) -> None:
    text = valid_rule_text.replace("condition: all of selection_*", "condition: selection_img")
    result = validate_rule(text)
    assert ("error", "dangling_detection", "detection.selection_cli") in issue_codes(result)


def test_attack_tags_checked_offline(valid_rule_text: str) -> None:
    text = valid_rule_text.replace("- attack.t1105", "- attack.t1105.999\n    - attack.t1167\n    - attack.stealth")
    result = validate_rule(text)
    issues = {(i.code, i.location): i for i in result.issues}
    bad = issues[("attacktag", "tags[1]")]
    assert bad.severity == "error" and bad.line == 11 and "'attack.t1105.999' is not an ATT&CK v18.1" in bad.message
    revoked = issues[("attacktag", "tags[2]")]
    assert "T1167 is revoked" in revoked.message
    newer = issues[("attacktag_unverified", "tags[3]")]
    assert newer.severity == "warning"
    assert not result.valid


def test_offline_bundle_feeds_pysigma() -> None:
    bundle = install_offline_attack_data()
    assert bundle.is_file()
    from sigma.data import mitre_attack

    assert mitre_attack.mitre_attack_version == "18.1"
    assert mitre_attack.mitre_attack_techniques["T1059.001"] == "PowerShell"
    assert mitre_attack.mitre_attack_tactics["TA0002"] == "execution"


def test_misspelt_key_and_uppercase_attack_tag(valid_rule_text: str) -> None:
    text = valid_rule_text.replace("falsepositives:", "falsepositive:").replace("attack.t1105", "attack.T1105")
    codes = [(i.code, i.location) for i in validate_rule(text).errors]
    assert ("misspelt_field", "falsepositive") in codes
    assert ("missing_field", "falsepositives") in codes
    assert ("invalid_tag_format", "tags[1]") in codes


def test_feedback_lists_every_issue(valid_rule_text: str) -> None:
    text = valid_rule_text.replace("author: ctistudio\n", "").replace("attack.t1105", "attack.t9999")
    result = validate_rule(text)
    lines = result.feedback().splitlines()
    assert len(lines) == len(result.issues) == 2
    assert lines[0].startswith("- error [missing_field] at author")
    assert "attack.t9999" in lines[1]


def test_one_error_per_field(valid_rule_text: str) -> None:
    text = valid_rule_text.replace("id: 6b0e7c5a-3d3f-4b5e-9f0e-2f1f6d2b8a11", "id: not-a-uuid")
    result = validate_rule(text)
    assert [(i.code, i.location) for i in result.issues] == [("invalid_id", "id")]
