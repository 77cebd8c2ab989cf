"""Rendering a draft: the prose code keeps or replaces."""

from __future__ import annotations

from ctistudio.pipeline.rule_draft import DetectionItem, RuleDraft
from ctistudio.pipeline.rule_render import RuleFacts, render_rule
from ctistudio.sigma.taxonomy import log_source

FACTS = RuleFacts("0b6f4c1e-2f7a-4c55-9d1e-6a2b3c4d5e6f", "https://example.org/report", "2026-12-07")
ARTICLE = "Operation Paper Lantern: A Phishing Campaign Against Logistics Firms"
PROCESS = log_source("windows/process_creation")
SELECTION = [
    DetectionItem(field="Image", modifier="endswith", values=["\\rundll32.exe"]),
    DetectionItem(field="CommandLine", modifier="contains|all", values=["comsvcs.dll", "MiniDump"]),
]


def _title(title: str) -> str:
    draft = RuleDraft(title=title, description="Rundll32 dumps LSASS memory.", selections=[SELECTION])
    rule = render_rule(draft, PROCESS, FACTS, article_title=ARTICLE)
    assert rule is not None
    return str(rule["title"])


def test_a_title_of_its_own_is_kept():
    assert _title("Rundll32 Dumping LSASS With Comsvcs MiniDump") == "Rundll32 Dumping LSASS With Comsvcs MiniDump"


def test_the_article_title_copied_is_replaced_by_what_the_rule_matches():
    # small models copy the title the prompt gives them: every rule of a run would look the same
    for copied in (ARTICLE, "operation paper lantern", "Operation Paper Lantern:", ""):
        assert _title(copied) == "Rundll32.exe With comsvcs.dll, MiniDump"


def test_a_title_is_never_empty_even_when_the_values_are_only_separators():
    # found by the property test: no title, and an Image value of "/ " left nothing to name the rule after
    dns = log_source("windows/dns_query")
    draft = RuleDraft(title="", selections=[[DetectionItem(field="Image", modifier="endswith", values=["/ "])]])
    rule = render_rule(draft, dns, FACTS, article_title="A report")
    assert rule is not None and rule["title"] == "Suspicious Dns Query (windows/dns_query)"


def test_a_title_that_names_a_value_is_kept_even_when_it_shares_words_with_the_article_title():
    assert _title("Lantern Comsvcs Dump") == "Lantern Comsvcs Dump"
    assert _title("Pap Rundll32") == "Pap Rundll32"  # "Pap" is not a word of the article's title


def test_a_generic_title_is_replaced_by_what_the_rule_matches():
    # the 0.5B model's titles once it no longer saw the article's title: true of any rule of the log source
    for generic in ("DNS Query Attack", "Registry Set", "Suspicious Process", "Malicious Activity"):
        assert _title(generic) == "Rundll32.exe With comsvcs.dll, MiniDump"


def test_the_description_says_what_the_rule_matches_with_its_techniques_and_report():
    draft = RuleDraft(title="x", tags=["attack.t1003.001"], selections=[SELECTION])
    rule = render_rule(draft, PROCESS, FACTS, article_title=ARTICLE)
    assert rule is not None
    assert rule["description"] == (
        "Detects a process creation where Image ends with '\\rundll32.exe' and CommandLine contains all of "
        f"'comsvcs.dll', 'MiniDump' (ATT&CK T1003.001 LSASS Memory), as reported in '{ARTICLE}'."
    )


def test_a_drafts_own_description_follows_the_account_of_what_is_matched():
    draft = RuleDraft(title="x", description="Built by the floor; review before use.", selections=[SELECTION])
    rule = render_rule(draft, PROCESS, FACTS, article_title=ARTICLE)
    assert rule is not None
    assert rule["description"].startswith("Detects a process creation where Image ends with")
    assert rule["description"].endswith(f"as reported in '{ARTICLE}'. Built by the floor; review before use.")


def test_a_description_names_a_few_values_of_a_long_list_and_says_how_many_more():
    values = [f"value{n}.dll" for n in range(7)]
    draft = RuleDraft(selections=[[DetectionItem(field="CommandLine", modifier="contains", values=values)]])
    rule = render_rule(draft, PROCESS, FACTS, article_title="A report")
    assert rule is not None
    assert "'value0.dll', 'value1.dll', 'value2.dll', 'value3.dll' and 3 more" in rule["description"]
    assert "value4.dll" not in rule["description"] and len(rule["detection"]["selection"]["CommandLine|contains"]) == 7


def test_a_title_from_the_values_names_each_value_once():
    # seen in the demo: three selections on the same path made "Process Libraries\open.hta, Libraries\open.hta, …"
    path = "\\Libraries\\open.hta"
    draft = RuleDraft(
        title=ARTICLE,
        selections=[
            [DetectionItem(field="CommandLine", modifier="endswith", values=[path])],
            [DetectionItem(field="CommandLine", modifier="contains", values=[path, "mshta"])],
        ],
    )
    rule = render_rule(draft, PROCESS, FACTS, article_title=ARTICLE)
    assert rule is not None and rule["title"] == "Process Libraries\\open.hta, mshta"


def test_selections_that_render_the_same_are_written_once():
    # seen in the demo: contains|all of one value and contains of it are the same selection once rendered
    path = "\\Libraries\\open.hta"
    draft = RuleDraft(
        title="Mshta Opening An HTA From Public Libraries",
        selections=[
            [DetectionItem(field="CommandLine", modifier="contains|all", values=[path])],
            [DetectionItem(field="CommandLine", modifier="contains", values=[path])],
        ],
        match="any",
    )
    rule = render_rule(draft, PROCESS, FACTS, article_title=ARTICLE)
    assert rule is not None
    assert rule["detection"] == {"selection": {"CommandLine|contains": path}, "condition": "selection"}
