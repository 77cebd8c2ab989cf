"""Render a :class:`~ctistudio.pipeline.rule_draft.RuleDraft` into a Sigma rule, valid by construction.

Code writes every part of the rule that decides whether pySigma accepts it: the deterministic fields (id,
status, author, date, references, logsource), the selection names and the condition (from the draft's
``match``), the field|modifier keys (from the log source's taxonomy), value escaping (Sigma's wildcards and
backslashes), numbers for numeric fields, de-duplicated tags with their tactics, and sane prose (control
characters removed, lengths bounded, never empty). The YAML is written by the project's own dumper.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ctistudio.pipeline.attack_tags import with_tactics
from ctistudio.pipeline.rule_draft import DetectionItem, RuleDraft
from ctistudio.pipeline.rule_values import clean
from ctistudio.sigma.attack import attack_catalog
from ctistudio.sigma.rule_yaml import dump_rule
from ctistudio.sigma.taxonomy import CONTAINS, CONTAINS_ALL, ENDSWITH, EQUALS, REGEX, STARTSWITH, LogSourceSpec

AUTHOR = "ctistudio (generated, review before use)"
TITLE_CHARS = 100
DESCRIPTION_CHARS = 500
_TEXT_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class RuleFacts:
    """The fields code sets on every rule of a run."""

    rule_id: str
    reference: str
    date: str  # YYYY-MM-DD


def sigma_escape(value: str) -> str:
    """A literal string as a Sigma value: ``*`` and ``?`` escaped, and a backslash before ``\\``, ``*`` or
    ``?`` doubled (Sigma reads ``\\\\`` as one backslash; a backslash before anything else is itself)."""
    out = []
    for index, char in enumerate(value):
        following = value[index + 1] if index + 1 < len(value) else ""
        if char == "\\" and following in ("\\", "*", "?"):
            out.append("\\\\")
        elif char in "*?":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def _prose(text: str, limit: int) -> str:
    text = " ".join(_TEXT_CONTROL.sub(" ", text).split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _values(item: DetectionItem, spec: LogSourceSpec) -> list[str | int]:
    field_spec = spec.field(item.field)
    out: list[str | int] = []
    for value in item.values:
        if field_spec is not None and field_spec.numeric:
            try:
                number: str | int = int(str(value).strip())
            except ValueError:
                continue
            rendered = number
        elif item.modifier == REGEX:
            rendered = re.escape(clean(str(value)))
        else:
            rendered = sigma_escape(clean(str(value)))
        if rendered != "" and rendered not in out:
            out.append(rendered)
    return out


def _not_implied(values: list[str | int]) -> list[str | int]:
    """``contains|all`` values without those another value already contains (``rundll32.exe`` next to
    ``C:\\Windows\\System32\\rundll32.exe`` adds nothing)."""
    texts = [str(v).lower() for v in values]
    return [v for v, t in zip(values, texts, strict=True) if not any(t != o and t in o for o in texts)]


def _selection(items: list[DetectionItem], spec: LogSourceSpec) -> dict[str, Any]:
    """Detection items as one selection mapping; items with the same field and modifier are merged."""
    merged: dict[tuple[str, str], list[str | int]] = {}
    for item in items:
        field_spec = spec.field(item.field)
        if field_spec is None or item.modifier not in field_spec.modifiers:
            continue  # cannot happen with a schema-valid answer; a hand-made draft is held to the same rule
        known = merged.setdefault((item.field, item.modifier), [])
        known += [v for v in _values(item, spec) if v not in known]
    out: dict[str, Any] = dict(spec.base)
    for (name, modifier), values in merged.items():
        if not values:
            continue
        if modifier == CONTAINS_ALL:
            values = _not_implied(values)
        if modifier == CONTAINS_ALL and len(values) == 1 and (name, CONTAINS) not in merged:
            modifier = CONTAINS  # "all" of one value is that value (pySigma flags the redundant modifier)
        key = name if modifier == EQUALS else f"{name}|{modifier}"
        out[key] = values[0] if len(values) == 1 else values
    return out


def render_detection(draft: RuleDraft, spec: LogSourceSpec) -> dict[str, Any] | None:
    """The ``detection`` mapping (named selections and condition); ``None`` when nothing is left to match."""
    rendered = [s for s in (_selection(items, spec) for items in draft.selections) if set(s) - set(spec.base)]
    # each selection once as written: drafts that differ (contains|all of one value, a base field) can
    # render the same, and a rule with two identical selections looks broken to a reviewer
    selections = list({json.dumps(s, sort_keys=True, default=str): s for s in rendered}.values())
    if not selections:
        return None
    if len(selections) == 1:
        detection: dict[str, Any] = {"selection": selections[0]}
        condition = "selection"
    else:
        detection = {f"selection_{n}": s for n, s in enumerate(selections, 1)}
        condition = "all of selection_*" if draft.match == "all" else "1 of selection_*"
    detection["condition"] = condition
    return detection


_SUBJECT = {
    "process_creation": "Process",
    "registry_set": "Registry Value Set",
    "registry_delete": "Registry Deletion Of",
    "dns_query": "DNS Query For",
    "network_connection": "Network Connection To",
    "proxy": "Web Request To",
    "system": "Service Installed",
}


def default_title(draft: RuleDraft, spec: LogSourceSpec) -> str:
    """A title from what is matched, for a draft without one: ``Rundll32.exe With comsvcs.dll, MiniDump``."""
    items = [item for items in draft.selections for item in items]
    image = next((str(i.values[0]).strip("\\/") for i in items if i.field == "Image"), None)
    # each value once: selections of one rule often share a value (endswith in one, contains in another)
    values = dict.fromkeys(str(v).strip("\\/") for i in items if i.field != "Image" for v in i.values)
    others = [v for v in values if v][:3]
    kind = spec.kind
    subject = _SUBJECT.get(kind, kind)
    if image:
        text = f"{image[:1].upper()}{image[1:]}" + (f" With {', '.join(others)}" if others else "")
    else:
        text = f"{subject} {', '.join(others)}"
    # values that are only separators or control characters leave nothing: the log source names the rule
    return _prose(text, TITLE_CHARS) or _prose(f"Suspicious {kind.replace('_', ' ').title()} ({spec.key})", TITLE_CHARS)


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _title(draft: RuleDraft, spec: LogSourceSpec, article_title: str) -> str:
    """The model's title when it names something the rule matches (a word of four letters or more found in
    one of its values: "Rundll32 Dumping LSASS With Comsvcs MiniDump"); otherwise — empty, (part of) the
    article's title, or generic ("DNS Query Attack", "Registry Set", as the 0.5B model wrote) — a title
    from what the rule matches."""
    title = _prose(draft.title, TITLE_CHARS)
    mine, article = _words(title), _words(article_title)
    matched = " ".join(str(v).lower() for items in draft.selections for item in items for v in item.values)
    names_a_value = any(len(word) >= 4 and word in matched for word in mine.split())
    if not names_a_value or f" {mine} " in f" {article} ":  # whole words: "Pap" is not part of "Paper"
        return default_title(draft, spec)
    return title


_MODIFIER_WORDS = {
    EQUALS: "is",
    CONTAINS: "contains",
    CONTAINS_ALL: "contains all of",
    STARTSWITH: "starts with",
    ENDSWITH: "ends with",
    REGEX: "matches",
}
_EVENT_WORDS = {
    "process_creation": "a process creation",
    "registry_set": "a registry value set",
    "registry_delete": "a registry key or value deletion",
    "dns_query": "a DNS query",
    "network_connection": "a network connection",
    "proxy": "a web request",
    "system": "a service installation",
}
DESCRIBED_VALUES = 4  # values named per field in a description; the rule itself has them all
DESCRIBED_CHARS = 80  # a longer value (an encoded command) is named by its start


def describe(detection: dict[str, Any], spec: LogSourceSpec, tags: list[str], article_title: str) -> str:
    """What the rule matches, in words, from its rendered detection, with the ATT&CK techniques it carries
    and the report it comes from. Written by code, so it is true of the rule whatever model chose it: the
    0.5B model's own descriptions restated the article's title and were cut mid-sentence, at ~50 tokens a rule."""
    selections = []
    for name, selection in detection.items():
        if name == "condition":
            continue
        items = []
        for key, values in selection.items():
            if key in spec.base:
                continue
            field, _, modifier = key.partition("|")
            listed = values if isinstance(values, list) else [values]
            shown = ", ".join(f"'{_prose(str(v), DESCRIBED_CHARS)}'" for v in listed[:DESCRIBED_VALUES])
            more = f" and {len(listed) - DESCRIBED_VALUES} more" if len(listed) > DESCRIBED_VALUES else ""
            items.append(f"{field} {_MODIFIER_WORDS.get(modifier or EQUALS, modifier)} {shown}{more}")
        selections.append(" and ".join(items))
    joiner = "; or " if str(detection.get("condition", "")).startswith("1 of") else "; and "
    text = f"Detects {_EVENT_WORDS.get(spec.kind, spec.kind.replace('_', ' '))} where {joiner.join(selections)}"
    names = attack_catalog().techniques
    techniques = [f"{t} {names[t]}" for t in (tag.removeprefix("attack.").upper() for tag in tags) if t in names]
    if techniques:
        text += f" (ATT&CK {', '.join(techniques)})"
    return f"{text}, as reported in '{article_title}'."


def render_rule(
    draft: RuleDraft, spec: LogSourceSpec, facts: RuleFacts, *, article_title: str
) -> dict[str, Any] | None:
    """The rule as a mapping in Sigma's key order; ``None`` when the draft's detection is empty.

    The description is :func:`describe`'s, followed by the draft's own (the floor's note on where the rule
    comes from, or a description a hand-made draft brings)."""
    detection = render_detection(draft, spec)
    if detection is None:
        return None
    title = _title(draft, spec, article_title)
    falsepositives = [p for p in (_prose(fp, 200) for fp in draft.falsepositives) if p] or ["Unknown"]
    tags = with_tactics(draft.tags) or with_tactics([f"attack.{spec.tactic}"])
    own = _prose(draft.description, DESCRIPTION_CHARS)
    description = _prose(f"{describe(detection, spec, tags, article_title)} {own}", DESCRIPTION_CHARS)
    return {
        "title": title,
        "id": facts.rule_id,
        "status": "experimental",
        "description": description,
        "references": [facts.reference],
        "author": AUTHOR,
        "date": facts.date,
        "tags": tags,
        "logsource": dict(spec.logsource),
        "detection": detection,
        "falsepositives": list(dict.fromkeys(falsepositives)),
        "level": draft.level,
    }


def render_yaml(rule: dict[str, Any]) -> str:
    return dump_rule(rule)
