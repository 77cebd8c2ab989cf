"""The log sources ctistudio writes rules for, their taxonomy fields, and the modifiers each field takes.

Generated rules are built from these tables, never from a model's field names: a model picks a field from
the log source's list (an enum the server enforces while decoding) and a modifier from that field's list, so
every rule uses a field of its log source and a modifier combination pySigma accepts. Field names follow the
Sigma taxonomy (Sysmon-style names for Windows endpoint data, the proxy taxonomy's W3C names for web proxies).

``base`` items are added to every selection of a log source by code: a service-install rule on the System log
always matches ``Provider_Name: Service Control Manager`` and ``EventID: 7045``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Modifier chains a generated detection item may use (pySigma's names, joined with "|").
EQUALS = "equals"  # no modifier: the field equals the value
CONTAINS = "contains"
CONTAINS_ALL = "contains|all"
STARTSWITH = "startswith"
ENDSWITH = "endswith"
REGEX = "re"
MODIFIERS = (EQUALS, CONTAINS, CONTAINS_ALL, STARTSWITH, ENDSWITH, REGEX)

_TEXT = (CONTAINS, CONTAINS_ALL, STARTSWITH, ENDSWITH, REGEX)
_PATH = (ENDSWITH, EQUALS, CONTAINS)
_NAME = (EQUALS, CONTAINS, STARTSWITH, ENDSWITH)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    modifiers: tuple[str, ...]
    numeric: bool = False  # values are whole numbers (ports, event ids)
    # Matches too much on its own (every run of a program, every connection to port 443): a selection needs
    # another field besides, or two broad fields together (a parent → child pair).
    broad: bool = False


@dataclass(frozen=True)
class LogSourceSpec:
    key: str  # "windows/process_creation" …, the pipeline's group key
    logsource: dict[str, str]
    fields: tuple[FieldSpec, ...]
    base: dict[str, str | int] = field(default_factory=dict)
    tactic: str = "execution"  # the ATT&CK tactic a rule on this source gets when nothing more specific is known
    # what a rule built without a model says may match legitimately
    falsepositive: str = "Legitimate use of the same program with these arguments (administration, deployment)"

    @property
    def kind(self) -> str:
        """The event this log source records: its category (``process_creation``), else its service (``system``)."""
        return self.logsource.get("category") or self.logsource.get("service") or self.key

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    def is_specific(self, fields: set[str]) -> bool:
        """Whether a selection on ``fields`` (names of this source) matches a behaviour, not a whole program."""
        broad = {name for name in fields if (spec := self.field(name)) is not None and spec.broad}
        # OriginalFileName names the same program as Image: together they are still one program
        roles = {"Image" if name == "OriginalFileName" else name for name in broad}
        return bool(fields - broad) or len(roles) >= 2


def _process_creation(product: str) -> LogSourceSpec:
    fields = [
        FieldSpec("Image", _PATH, broad=True),
        FieldSpec("CommandLine", _TEXT),
        FieldSpec("ParentImage", _PATH, broad=True),
        FieldSpec("ParentCommandLine", _TEXT),
        FieldSpec("CurrentDirectory", (CONTAINS, STARTSWITH), broad=True),
        FieldSpec("User", (CONTAINS, EQUALS), broad=True),
    ]
    if product == "windows":
        fields.insert(1, FieldSpec("OriginalFileName", (EQUALS,), broad=True))
    return LogSourceSpec(
        f"{product}/process_creation", {"category": "process_creation", "product": product}, tuple(fields)
    )


LOG_SOURCES: dict[str, LogSourceSpec] = {
    spec.key: spec
    for spec in (
        _process_creation("windows"),
        _process_creation("linux"),
        _process_creation("macos"),
        LogSourceSpec(
            "windows/registry_set",
            {"category": "registry_set", "product": "windows"},
            (
                FieldSpec("TargetObject", (ENDSWITH, CONTAINS, CONTAINS_ALL)),
                FieldSpec("Details", (CONTAINS, CONTAINS_ALL, EQUALS, STARTSWITH)),
                FieldSpec("Image", (ENDSWITH, EQUALS), broad=True),
            ),
            tactic="persistence",
            falsepositive="Software that writes the same registry value",
        ),
        LogSourceSpec(
            "windows/registry_delete",
            {"category": "registry_delete", "product": "windows"},
            (
                FieldSpec("TargetObject", (ENDSWITH, CONTAINS, CONTAINS_ALL)),
                FieldSpec("Image", (ENDSWITH, EQUALS), broad=True),
            ),
            tactic="defense-evasion",
            falsepositive="Software that removes the same registry key or value (uninstallers, cleanup)",
        ),
        LogSourceSpec(
            "windows/system",
            {"product": "windows", "service": "system"},
            (
                FieldSpec("ServiceName", _NAME),
                FieldSpec("ImagePath", (CONTAINS, CONTAINS_ALL, ENDSWITH, STARTSWITH)),
                FieldSpec("AccountName", (EQUALS, CONTAINS), broad=True),
            ),
            base={"Provider_Name": "Service Control Manager", "EventID": 7045},
            tactic="persistence",
            falsepositive="Legitimate software that installs a service with the same name or binary",
        ),
        LogSourceSpec(
            "windows/dns_query",
            {"category": "dns_query", "product": "windows"},
            (
                FieldSpec("QueryName", (ENDSWITH, EQUALS, CONTAINS)),
                FieldSpec("Image", (ENDSWITH, EQUALS), broad=True),
            ),
            tactic="command-and-control",
            falsepositive="Legitimate traffic to the same host (shared or re-used infrastructure)",
        ),
        LogSourceSpec(
            "windows/network_connection",
            {"category": "network_connection", "product": "windows"},
            (
                FieldSpec("DestinationIp", (EQUALS, STARTSWITH)),
                FieldSpec("DestinationHostname", (ENDSWITH, EQUALS, CONTAINS)),
                FieldSpec("DestinationPort", (EQUALS,), numeric=True, broad=True),
                FieldSpec("Image", (ENDSWITH, EQUALS), broad=True),
            ),
            tactic="command-and-control",
            falsepositive="Legitimate traffic to the same host (shared or re-used infrastructure)",
        ),
        LogSourceSpec(
            "proxy",
            {"category": "proxy"},
            (
                FieldSpec("c-uri", (CONTAINS, ENDSWITH, STARTSWITH)),
                FieldSpec("cs-host", (ENDSWITH, EQUALS)),
                FieldSpec("c-useragent", (CONTAINS, EQUALS)),
            ),
            tactic="command-and-control",
            falsepositive="Legitimate traffic to the same host (shared or re-used infrastructure)",
        ),
    )
}


def log_source(key: str) -> LogSourceSpec:
    """The spec of a group key; unknown keys are a programming error (groups come from this table)."""
    return LOG_SOURCES[key]
