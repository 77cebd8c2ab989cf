"""Canonical atoms: modifiers vs wildcards, case, escapes, aliases, keywords, |all, regexes, log sources."""

from __future__ import annotations

from ctistudio.sigma.similarity.atoms import (
    Literal,
    canonical_field,
    detection_node,
    field_literals,
    literal_features,
    logsource_class,
    normalise_value,
    value_implies,
)


def atoms_of(key: str, value) -> list[str]:
    result = field_literals(key, value)
    literals = result if isinstance(result, list) else [result]
    return sorted(a for literal in literals for a in literal.atoms())


def test_match_modifiers_equal_wildcards() -> None:
    assert atoms_of("Image|endswith", "\\cmd.exe") == atoms_of("Image", "*\\cmd.exe") == ["image||*\\cmd.exe"]
    assert atoms_of("CommandLine|contains", " -enc ") == atoms_of("CommandLine", "* -enc *")
    assert atoms_of("CommandLine|startswith", "cmd /c") == ["commandline||cmd /c*"]
    assert atoms_of("CommandLine|contains", "*already*") == ["commandline||*already*"]
    assert normalise_value("a**b", None) == "a*b"


def test_case_folding_and_cased_modifier() -> None:
    assert atoms_of("IMAGE|EndsWith", "\\CMD.EXE") == ["image||*\\cmd.exe"]
    assert atoms_of("Image|endswith|cased", "\\CMD.exe") == ["image||*\\cmd.exe"]


def test_escaped_wildcards_stay_literal() -> None:
    assert atoms_of("CommandLine|contains", "a\\*b") == ["commandline||*a\\*b*"]
    assert atoms_of("CommandLine|contains", "a*b") == ["commandline||*a*b*"]
    assert atoms_of("Path", "C:\\Windows\\") == ["path||c:\\windows\\"]


def test_field_aliases() -> None:
    assert canonical_field("NewProcessName") == "image"
    assert canonical_field("process.command_line") == "commandline"
    assert atoms_of("ParentProcessName|endswith", "\\winword.exe") == ["parentimage||*\\winword.exe"]
    assert canonical_field("TargetFilename") == "targetfilename"


def test_lists_are_or_and_all_is_and() -> None:
    literal = field_literals("CommandLine|contains", ["b", "a"])
    assert literal == Literal(False, "commandline|", frozenset({"*a*", "*b*"}))
    both = field_literals("CommandLine|contains|all", ["b", "a"])
    assert both == [
        Literal(False, "commandline|", frozenset({"*b*"})),
        Literal(False, "commandline|", frozenset({"*a*"})),
    ]


def test_other_modifiers_are_kept_in_order() -> None:
    assert atoms_of("CommandLine|wide|base64offset|contains", "ping") == ["commandline|utf16le|base64offset|*ping*"]
    assert atoms_of("CommandLine|windash|contains", "-enc") == ["commandline|windash|*-enc*"]
    assert atoms_of("DestinationIp|cidr", "10.0.0.0/8") == ["destinationip|cidr|10.0.0.0/8"]


def test_regex_keeps_case_unless_i() -> None:
    assert atoms_of("CommandLine|re", "AbC.*") == ["commandline|re|AbC.*"]
    assert atoms_of("CommandLine|re|i", "AbC.*") == ["commandline|re|i|abc.*"]


def test_scalars() -> None:
    assert atoms_of("EventID", [4688, "4688"]) == ["eventid||4688"]
    assert atoms_of("Enabled", True) == ["enabled||true"]
    assert atoms_of("ParentImage", None) == ["parentimage||<null>"]


def test_keywords_are_full_text_contains() -> None:
    node = detection_node(["Mimikatz", "sekurlsa::"])
    assert node == ("lit", Literal(False, "|", frozenset({"*mimikatz*", "*sekurlsa::*"})))


def test_list_of_maps_is_or_of_ands() -> None:
    node = detection_node([{"a": 1, "b": 2}, {"c": 3}])
    assert node[0] == "or" and node[1][0][0] == "and"


def test_logsource_class() -> None:
    assert logsource_class({"product": "Windows", "category": "Process-Creation"}) == (
        "windows",
        "process_creation",
        "",
    )
    assert logsource_class({"service": "sysmon", "product": "windows"}) == ("windows", "", "sysmon")
    assert logsource_class(None) == ("", "", "")


def test_near_match_features() -> None:
    spaced = Literal(False, "commandline|", frozenset({"*urlcache *"}))
    plain = Literal(False, "commandline|", frozenset({"*urlcache*"}))
    assert literal_features(spaced) == literal_features(plain) == ["~commandline||urlcache"]
    path = Literal(False, "image|", frozenset({"*\\windows\\system32\\certutil.exe"}))
    assert literal_features(path) == ["~image||certutil.exe", "~image||windows\\system32\\certutil.exe"]
    assert literal_features(Literal(True, "user|", frozenset({"system"}))) == []  # filters give none
    assert literal_features(Literal(False, "commandline|re|", frozenset({"abc.*"}))) == []
    assert literal_features(Literal(False, "commandline|", frozenset({"*-e *"}))) == []  # too short


def test_wildcard_implication() -> None:
    assert value_implies("*urlcache -f *", "*urlcache *")
    assert value_implies("*\\certutil.exe", "*certutil.exe")
    folder = normalise_value("C:\\Windows\\", "startswith")  # canonical: c:\windows\\* (escaped backslash)
    assert folder == "c:\\windows\\\\*"
    assert value_implies("c:\\windows\\x.exe", folder)
    assert value_implies("anything", "*")
    assert not value_implies("*urlcache*", "*urlcache *")
    assert not value_implies("certutil.exe*", "*certutil.exe")  # may continue after .exe
    assert value_implies("a\\*b", "*a*b*") is False and value_implies("*a\\*b*", "*a\\*b*")
