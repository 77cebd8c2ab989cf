"""convert: Splunk and Elastic queries through the real pySigma backends, and clear failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctistudio.errors import InvalidInput
from ctistudio.sigma import convert
from ctistudio.sigma.errors import ConversionFailed


def test_windows_rule_to_splunk(valid_rule_text: str) -> None:
    result = convert(valid_rule_text, "splunk")
    assert result.backend == "SplunkBackend" and result.pipeline == "splunk_windows"
    [query] = result.queries
    assert 'Image="*\\\\certutil.exe"' in query
    assert 'CommandLine IN ("*urlcache*", "*verifyctl*")' in query


def test_windows_rule_to_elastic_uses_ecs_fields(valid_rule_text: str) -> None:
    [query] = convert(valid_rule_text, "elastic").queries
    assert "process.executable" in query and "process.command_line:(*urlcache* OR *verifyctl*)" in query
    [esql] = convert(valid_rule_text, "esql").queries
    assert esql.startswith("from ") and "process.command_line like" in esql


def test_sigmahq_linux_rule_keeps_its_field_names(sigmahq_rules: Path) -> None:
    path = sigmahq_rules / "rules/linux/process_creation/proc_creation_lnx_susp_java_children.yml"
    result = convert(path.read_text(encoding="utf-8"), "splunk")
    assert result.pipeline is None
    assert result.queries[0].startswith('ParentImage="*/java"')


def test_unknown_target() -> None:
    with pytest.raises(InvalidInput, match="unknown conversion target 'qradar'"):
        convert("title: x", "qradar")


def test_rule_with_undefined_identifier_cannot_be_converted(valid_rule_text: str) -> None:
    text = valid_rule_text.replace("condition: all of selection_*", "condition: selection_img and nope")
    with pytest.raises(
        ConversionFailed, match="cannot convert this rule to splunk: Detection 'nope' not defined"
    ) as info:
        convert(text, "splunk")
    assert info.value.fix and "sigma validate" in info.value.fix


def test_feature_the_backend_lacks(valid_rule_text: str) -> None:
    keywords = (
        "title: k\nlogsource: {product: linux, service: syslog}\n"
        "detection:\n  keywords: [evil]\n  condition: keywords\n"
    )
    assert convert(keywords, "splunk").queries == ['"evil"']
    with pytest.raises(ConversionFailed, match="cannot convert this rule to esql"):
        convert(keywords, "esql")


def test_bad_yaml_cannot_be_converted() -> None:
    with pytest.raises(ConversionFailed, match="not valid YAML at line 3"):
        convert("title: x\ndetection: [\n", "elastic")
