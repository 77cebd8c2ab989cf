"""The ATT&CK tags a generated rule may carry: what the article names and what its observables show.

Two sources, both checked against the packaged ATT&CK data (so every tag offered exists):

- technique IDs the article itself names (``T1218.011``), and
- techniques the group's observables show, from a small table of well-known tradecraft (rundll32 →
  T1218.011 System Binary Proxy Execution: Rundll32, ``schtasks /create`` → T1053.005 …).

Each technique brings its tactics; the log source's default tactic is always offered, so a rule never goes
without a tag. The model picks from this list (an enum); code adds the tactic of every technique picked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ctistudio.pipeline.models import Observable
from ctistudio.sigma.attack import attack_catalog
from ctistudio.sigma.taxonomy import LogSourceSpec

_TECHNIQUE_ID = re.compile(r"\bT(\d{4})(?:\.(\d{3}))?\b")
# (pattern over an observable's value and evidence, techniques it shows)
_TRADECRAFT: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(pattern, re.I), tuple(ids.split()))
    for pattern, ids in (
        (r"\b(?:powershell|pwsh)(?:\.exe)?\b", "T1059.001"),
        (r"\s-(?:e|ec|enc|encodedcommand)\s+[A-Za-z0-9+/=]{16,}|frombase64string", "T1027"),
        (r"\bcmd(?:\.exe)?\s+/[ck]\b", "T1059.003"),
        (r"\b(?:wscript|cscript)(?:\.exe)?\b", "T1059.005"),
        (r"(?:^|/|\s)(?:bash|sh|zsh)\s+-c\b", "T1059.004"),
        (r"\bosascript\b", "T1059.002"),
        (r"\bmshta(?:\.exe)?\b", "T1218.005"),
        (r"\brundll32(?:\.exe)?\b", "T1218.011"),
        (r"\bregsvr32(?:\.exe)?\b", "T1218.010"),
        (r"\bmsiexec(?:\.exe)?\b", "T1218.007"),
        (r"\binstallutil(?:\.exe)?\b", "T1218.004"),
        (r"\bschtasks(?:\.exe)?\b.*/create|register-scheduledtask|new-scheduledtask", "T1053.005"),
        (r"\bcrontab\b", "T1053.003"),
        (r"\bsc(?:\.exe)?\s+create\b|new-service\b|\\services\\", "T1543.003"),
        (r"\bsystemctl\b.*\benable\b|\.service\b", "T1543.002"),
        (r"\blaunchctl\b|launchagents|launchdaemons", "T1543.001"),
        (r"\\currentversion\\run(?:once)?\b", "T1547.001"),
        (r"\breg(?:\.exe)?\s+add\b|set-itemproperty|new-itemproperty", "T1112"),
        (r"\bwmic(?:\.exe)?\b.*\bprocess\s+call\s+create\b", "T1047"),
        (r"comsvcs(?:\.dll)?.*minidump|\blsass\b|sekurlsa|procdump.*lsass", "T1003.001"),
        (r"\bntdsutil\b|ntds\.dit", "T1003.003"),
        (r"uselogoncredential|\\wdigest\b", "T1112 T1003.001"),
        (r"\bcertutil(?:\.exe)?\b.*-urlcache|\bbitsadmin\b.*/transfer|\b(?:curl|wget)\b\s", "T1105"),
        (r"\bvssadmin\b.*\bdelete\s+shadows|wbadmin\b.*delete|bcdedit\b.*recoveryenabled", "T1490"),
        (r"\bwevtutil\b.*\bcl\b|clear-eventlog", "T1070.001"),
        (r"\bwhoami\b", "T1033"),
        (r"\bnltest\b.*(?:domain_trusts|dclist)", "T1482"),
        (r"\bnet1?(?:\.exe)?\s+group\b|\bnet1?(?:\.exe)?\s+user\b.*/domain", "T1087.002"),
        (r"\bipconfig\b|\broute\s+print\b|\barp\s+-a\b", "T1016"),
        (r"\bsysteminfo\b", "T1082"),
        (r"\btasklist\b", "T1057"),
        (r"\brclone\b|--transfers\b", "T1567.002"),
        (r"\b7z[a]?(?:\.exe)?\s+a\b|\brar(?:\.exe)?\s+a\b", "T1560.001"),
        (r"add-mppreference|set-mppreference|disablerealtimemonitoring", "T1562.001"),
        (r"\bpsexec(?:64)?(?:\.exe)?\b", "T1569.002"),
        (r"\bmimikatz\b", "T1003.001"),
    )
)
# A network observable's technique, by its log source.
_NETWORK_TECHNIQUES = {"windows/dns_query": ("T1071.004",), "proxy": ("T1071.001",)}


def technique_tag(technique_id: str) -> str:
    return f"attack.{technique_id.lower()}"


def techniques_named(text: str) -> list[str]:
    """ATT&CK technique IDs written in ``text`` that the packaged data knows (in order, no repeats)."""
    known = attack_catalog().techniques
    found = []
    for match in _TECHNIQUE_ID.finditer(text):
        technique = f"T{match.group(1)}" + (f".{match.group(2)}" if match.group(2) else "")
        if technique in known and technique not in found:
            found.append(technique)
    return found


def techniques_shown(observables: Iterable[Observable], spec: LogSourceSpec) -> list[str]:
    """Techniques the observables themselves show (the tradecraft table), known to the packaged data."""
    known = attack_catalog().techniques
    found: list[str] = []
    for o in observables:
        text = f"{o.value}\n{o.source_evidence}"
        ids = [i for pattern, ids in _TRADECRAFT if pattern.search(text) for i in ids]
        if o.kind == "network":
            ids += _NETWORK_TECHNIQUES.get(spec.key, ("T1071",))
        found += [i for i in ids if i in known and i not in found]
    return found


def tag_choices(article: str, observables: Sequence[Observable], spec: LogSourceSpec) -> list[str]:
    """The tags a model may choose for this group's rules: the techniques shown and named, or the group's
    default tactic when there are none. Tactics are not offered: the renderer adds each technique's tactics
    (:func:`with_tactics`), and a small model given them spent its tag budget on tactics."""
    techniques = techniques_shown(observables, spec) + [t for t in techniques_named(article)]
    known = attack_catalog().technique_tactics
    tags = [technique_tag(t) for t in dict.fromkeys(techniques) if t.upper() in known][:40]
    return tags or [f"attack.{spec.tactic}"]


def with_tactics(tags: Iterable[str]) -> list[str]:
    """``tags`` plus the tactic of every technique among them; tactics first, each tag once."""
    catalog = attack_catalog()
    tactics: list[str] = []
    techniques: list[str] = []
    for tag in tags:
        name = tag.removeprefix("attack.")
        if name.upper() in catalog.technique_tactics:
            techniques.append(tag)
            tactics += [f"attack.{t}" for t in catalog.technique_tactics[name.upper()]]
        elif name in catalog.tactics:
            tactics.append(tag)
    return list(dict.fromkeys([*tactics, *techniques]))
