"""Validate a Sigma rule: YAML syntax, ctistudio's required fields, pySigma parsing, condition, validators.

The result lists *every* problem found (the pipeline's repair loop sends the full list back to the model),
each with a severity, a stable code, a message that says what to change, and where (a key path and the
line in the text). A rule is valid when no issue has severity ``error``.

Stages, each run only when the previous one left a rule to look at:

1. YAML: syntax errors (line and column), duplicate keys, exactly one document that is a mapping.
2. Fields: the keys ctistudio requires (:mod:`ctistudio.sigma.fields`).
3. pySigma parsing (``collect_errors=True``): detections, modifiers, values, dates, tags…
4. The condition, parsed by pySigma (a broken condition otherwise only fails during conversion).
5. pySigma's validators — on rules that parsed cleanly only, since a rule with parse errors crashes the
   condition validators. ATT&CK tags are checked offline against ATT&CK v18.1 (:mod:`ctistudio.sigma.attack`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

from ctistudio.safe_yaml import YamlRefused
from ctistudio.sigma.attack import check_attack_tag
from ctistudio.sigma.fields import check_fields
from ctistudio.sigma.rule_yaml import KeyPath, dump_rule, error_message, error_position, key_lines, load_documents

Severity = Literal["error", "warning", "info"]
Source = Literal["yaml", "fields", "pysigma", "condition", "validator"]

# pySigma validators not run, and why (reported in every result's ``checks_skipped``).
SKIPPED_VALIDATORS = {
    "d3_fendtag": "D3FEND tags are not checked: pySigma downloads D3FEND data, which is not available offline",
    "duplicate_filename": "needs the rule's file name among a collection",
    "filename_length": "needs the rule's file name",
    "duplicate_title": "compares titles across a collection, not within one rule",
    "identifier_uniqueness": "compares ids across a collection, not within one rule",
    "tlpv1_tag": "covered by tlptag (accepts TLP v1 and v2)",
    "tlpv2_tag": "covered by tlptag (accepts TLP v1 and v2)",
}
# Severity overrides of pySigma's (HIGH → error, MEDIUM → warning, LOW → info by default).
_SEVERITY_OVERRIDES: dict[str, Severity] = {
    "attacktag": "error",
    "specific_instead_of_generic_logsource": "warning",
    "identifier_existence": "error",
}
_PYSIGMA_ERROR_PATHS: dict[str, KeyPath] = {
    "SigmaTitleError": ("title",),
    "SigmaIdentifierError": ("id",),
    "SigmaStatusError": ("status",),
    "SigmaLevelError": ("level",),
    "SigmaDateError": ("date",),
    "SigmaModifiedError": ("modified",),
    "SigmaLogsourceError": ("logsource",),
    "SigmaDetectionError": ("detection",),
    "SigmaConditionError": ("detection", "condition"),
    "SigmaReferencesError": ("references",),
    "SigmaAuthorError": ("author",),
    "SigmaDescriptionError": ("description",),
    "SigmaFalsePositivesError": ("falsepositives",),
    "SigmaTagError": ("tags",),
    "SigmaFieldsError": ("fields",),
    "SigmaRelatedError": ("related",),
    "SigmaLicenseError": ("license",),
    "SigmaScopeError": ("scope",),
    "SigmaNameError": ("name",),
    "SigmaTaxonomyError": ("taxonomy",),
}


class ValidationIssue(BaseModel):
    """One problem: what (code, message), how bad (severity), where (key path and line)."""

    severity: Severity
    code: str
    message: str
    location: str | None = Field(default=None, description="key path, e.g. 'detection.selection' or 'tags[1]'")
    line: int | None = None
    column: int | None = None
    source: Source

    def render(self) -> str:
        where = f" at {self.location}" if self.location else ""
        line = f" (line {self.line})" if self.line else ""
        return f"{self.severity} [{self.code}]{where}{line}: {self.message}"


class ValidationResult(BaseModel):
    """The outcome of :func:`validate_rule`. ``rule``/``normalized_yaml`` are None when the YAML is unreadable."""

    valid: bool
    issues: list[ValidationIssue]
    rule: dict[str, Any] | None = None
    normalized_yaml: str | None = None
    checks_skipped: list[str] = Field(default_factory=list)
    attack_version: str | None = None

    @property
    def errors(self) -> list[ValidationIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[ValidationIssue]:
        return [i for i in self.issues if i.severity == "warning"]

    def feedback(self) -> str:
        """Every issue, one per line, for a repair prompt or a terminal."""
        if not self.issues:
            return "The rule is valid: no issues."
        return "\n".join(f"- {issue.render()}" for issue in self.issues)


def _location(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Collector:
    """Issues of one validation, with line numbers looked up in the original text."""

    def __init__(self, text: str) -> None:
        self.issues: list[ValidationIssue] = []
        self._lines = key_lines(text)

    def add(self, severity: Severity, code: str, message: str, source: Source, path: KeyPath = ()) -> None:
        line = None
        for end in range(len(path), 0, -1):  # the deepest part of the path that exists in the text
            line = self._lines.get(path[:end])
            if line is not None:
                break
        issue = ValidationIssue(
            severity=severity, code=code, message=message, location=_location(path) or None, line=line, source=source
        )
        if issue not in self.issues:
            self.issues.append(issue)

    def has_error_at(self, top: str) -> bool:
        """An error at the top-level key ``top`` (or below it) is already listed."""
        return any(i.severity == "error" and (i.location or "").split(".")[0].split("[")[0] == top for i in self.issues)

    def already_reported(self, path: KeyPath) -> bool:
        """Our field checks already flagged this place, or the whole top-level field it is in."""
        if not path or path[0] == "detection":
            return False
        places = {_location(path), str(path[0])}
        return any(i.source == "fields" and i.severity == "error" and i.location in places for i in self.issues)


def validate_rule(yaml_text: str) -> ValidationResult:
    """Validate one Sigma rule given as YAML text; returns every issue found (never raises for a bad rule)."""
    from ctistudio.sigma.attack import attack_catalog

    collector = _Collector(yaml_text)
    skipped = [f"{name}: {why}" for name, why in SKIPPED_VALIDATORS.items()]
    version = attack_catalog().version
    rule = _load_single_rule(yaml_text, collector)
    if rule is None:
        return ValidationResult(valid=False, issues=collector.issues, checks_skipped=skipped, attack_version=version)
    for problem in check_fields(rule):
        collector.add(problem.severity, problem.code, problem.message, "fields", problem.path)  # type: ignore[arg-type]
    _check_with_pysigma(rule, collector)
    valid = not any(i.severity == "error" for i in collector.issues)
    return ValidationResult(
        valid=valid,
        issues=collector.issues,
        rule=rule,
        normalized_yaml=dump_rule(rule),
        checks_skipped=skipped,
        attack_version=version,
    )


def _load_single_rule(text: str, collector: _Collector) -> dict[str, Any] | None:
    if not text.strip():
        collector.add("error", "empty", "the rule is empty; write one Sigma rule as YAML", "yaml")
        return None
    try:
        documents = [d for d in load_documents(text) if d is not None]
    except YamlRefused as exc:
        collector.add("error", "yaml_refused", f"{exc.message}. {exc.fix}", "yaml")
        return None
    except yaml.YAMLError as exc:
        line, column = error_position(exc)
        message = f"YAML syntax error: {error_message(exc)}"
        if line:
            message += f" at line {line}, column {column}"
        context = getattr(exc, "context_mark", None)
        if context is not None and context.line + 1 != line and not isinstance(exc, yaml.constructor.ConstructorError):
            message += f" (the construct started at line {context.line + 1})"
        collector.issues.append(
            ValidationIssue(
                severity="error", code="yaml_syntax", message=message, line=line, column=column, source="yaml"
            )
        )
        return None
    if len(documents) != 1:
        what = "no YAML document" if not documents else f"{len(documents)} YAML documents separated by '---'"
        collector.add("error", "document_count", f"expected exactly one rule, found {what}", "yaml")
        return None
    if not isinstance(documents[0], Mapping):
        kind = type(documents[0]).__name__
        collector.add(
            "error", "not_a_mapping", f"a Sigma rule is a YAML mapping of keys (title, …), not a {kind}", "yaml"
        )
        return None
    if not all(isinstance(k, str) for k in documents[0]):
        collector.add("error", "invalid_key", "every top-level key must be a string", "yaml")
        return None
    return dict(documents[0])


def _check_with_pysigma(rule: dict[str, Any], collector: _Collector) -> None:
    from sigma.collection import SigmaCollection

    # Keys our field checks already rejected are left out, so that pySigma's first failure on them (e.g. a
    # bad UUID raises outside its error collection) does not hide its checks of the rest of the rule.
    keep = ("title", "logsource", "detection")
    checked = {k: v for k, v in rule.items() if k in keep or not collector.has_error_at(str(k))}
    try:
        collection = SigmaCollection.from_dicts([checked], collect_errors=True)
    except Exception as exc:  # pySigma raises plain ValueError/TypeError/KeyError on some malformed input
        collector.add(
            "error", "pysigma_parse", f"pySigma could not read the rule: {type(exc).__name__}: {exc}", "pysigma"
        )
        return
    parsed = collection.rules[0] if collection.rules else None
    errors = list(parsed.errors) if parsed is not None else list(collection.errors)
    for error in errors:
        _add_pysigma_error(rule, error, collector)
    if errors or parsed is None:
        return
    if not _check_condition(parsed, collector):
        return
    _run_validators(rule, parsed, collector)


def _error_code(exc: Exception) -> str:
    name = type(exc).__name__.removeprefix("Sigma").removesuffix("Error") or "sigma"
    return "pysigma_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _add_pysigma_error(rule: Mapping[str, Any], exc: Exception, collector: _Collector) -> None:
    message = str(exc.args[0]) if exc.args else str(exc)
    path = _PYSIGMA_ERROR_PATHS.get(type(exc).__name__) or _find_detection_path(rule, message) or ("detection",)
    if collector.has_error_at(str(path[0])) and path[0] != "detection":
        return  # our own field check already said it, with a fix
    if type(exc).__name__ == "SigmaModifierError" and message.startswith("Unknown modifier"):
        from sigma.modifiers import modifier_mapping

        message += f"; valid modifiers: {', '.join(sorted(modifier_mapping))}"
    collector.add("error", _error_code(exc), message, "pysigma", path)


def _find_detection_path(rule: Mapping[str, Any], message: str) -> KeyPath | None:
    """The detection key a pySigma message is about, found by the modifier or value it quotes."""
    quoted = re.findall(r"'([^']+)'", message)
    detection = rule.get("detection")
    if not isinstance(detection, Mapping):
        return None
    for name, body in detection.items():
        items = body if isinstance(body, list) else [body]
        for item in items:
            if isinstance(item, Mapping):
                for key in item:
                    if any(q in str(key).split("|") for q in quoted):
                        return ("detection", name, key)
    return None


def _check_condition(parsed: Any, collector: _Collector) -> bool:
    from sigma.exceptions import SigmaError

    ok = True
    for condition in parsed.detection.parsed_condition:
        try:
            condition.parsed  # noqa: B018 - parsing happens on access
        except SigmaError as exc:
            message = str(exc.args[0]) if exc.args else str(exc)
            collector.add(
                "error",
                "invalid_condition",
                f"condition {condition.condition!r} is invalid: {message}. Use search identifiers defined in "
                "'detection' combined with and, or, not, parentheses, '1 of selection_*', 'all of them'",
                "condition",
                ("detection", "condition"),
            )
            ok = False
    return ok


@cache
def _validator_classes() -> dict[str, type]:
    from sigma.validators.core import validators

    return {name: cls for name, cls in sorted(validators.items()) if name not in SKIPPED_VALIDATORS}


_attack_lock = threading.Lock()
_attack_tags: set[str] | None = None


def _allowed_attack_tags() -> set[str]:
    """pySigma's own ATT&CK tag set, loaded from the offline bundle once per process."""
    global _attack_tags
    with _attack_lock:
        if _attack_tags is None:
            from sigma.validators.core.tags import ATTACKTagValidator

            from ctistudio.sigma.attack import install_offline_attack_data

            install_offline_attack_data()
            _attack_tags = ATTACKTagValidator()._load_allowed_tags()
        return _attack_tags


def _run_validators(rule: Mapping[str, Any], parsed: Any, collector: _Collector) -> None:
    from sigma.validators.base import SigmaValidationIssueSeverity as Sev

    default: dict[Any, Severity] = {Sev.HIGH: "error", Sev.MEDIUM: "warning", Sev.LOW: "info"}
    for name, cls in _validator_classes().items():
        validator = cls()
        if name == "attacktag":
            validator.allowed_tags = _allowed_attack_tags()
        try:
            issues = list(validator.validate(parsed)) + list(validator.finalize())
        except Exception as exc:  # a crashing third-party validator must not hide the other checks
            collector.add(
                "warning", f"validator_crashed_{name}", f"pySigma validator {name} failed: {exc}", "validator"
            )
            continue
        for issue in issues:
            severity = _SEVERITY_OVERRIDES.get(name) or default.get(issue.severity, "info")
            code = name
            message, path = describe_issue(rule, name, issue)
            if name == "attacktag":
                verdict = check_attack_tag(f"{issue.tag.namespace}.{issue.tag.name}")
                if verdict is None:
                    continue
                severity, code, message = verdict  # type: ignore[assignment]
            if collector.already_reported(path):
                continue  # e.g. "no identifier" after our own invalid_id: one error per place is enough
            collector.add(severity, code, message, "validator", path)


def describe_issue(rule: Mapping[str, Any], name: str, issue: Any) -> tuple[str, KeyPath]:
    """A precise message and key path for a pySigma validation issue."""
    from dataclasses import fields

    details = {f.name: getattr(issue, f.name) for f in fields(issue) if f.name not in ("rules",)}
    tag = details.get("tag")
    parts = [f"{key}={_render(value)}" for key, value in details.items() if value is not None]
    message = type(issue).description + (f" ({', '.join(parts)})" if parts else "")
    if tag is not None:
        return message, _tag_path(rule, f"{tag.namespace}.{tag.name}")
    if "detection_name" in details:
        return message, ("detection", str(details["detection_name"]))
    if "condition_name" in details:
        return message, ("detection", "condition")
    if "reference" in details:
        return message, ("references",)
    if "fieldname" in details:
        return message, ("logsource", str(details["fieldname"])) if name == "fieldname_logsource" else (
            str(details["fieldname"]),
        )
    item = details.get("detection_item")
    if item is not None and getattr(item, "field", None):
        return message, _find_detection_path(rule, f"'{item.field}'") or ("detection",)
    return message, ("detection",) if name not in ("identifier_existence",) else ("id",)


def _render(value: Any) -> str:
    if hasattr(value, "namespace") and hasattr(value, "name"):
        return f"{value.namespace}.{value.name}"
    if hasattr(value, "field") and hasattr(value, "value"):
        mods = "".join("|" + m.__name__.removeprefix("Sigma").removesuffix("Modifier").lower() for m in value.modifiers)
        values = ", ".join(str(v) for v in value.value)
        return f"{value.field or 'keyword'}{mods}: {values}"
    return str(value)


def _tag_path(rule: Mapping[str, Any], tag: str) -> KeyPath:
    tags = rule.get("tags")
    if isinstance(tags, list):
        for index, value in enumerate(tags):
            if isinstance(value, str) and value.lower() == tag.lower():
                return ("tags", index)
    return ("tags",)
