"""STIX 2.1 bundles with the ``stix2`` library, checked with OASIS's ``stix2-validator``.

A bundle holds, per article: a ``report`` (the article as its external reference) whose ``object_refs``
list what came from it; an ``indicator`` with a STIX pattern per network or hash indicator
(``[domain-name:value = '…']``); an ``indicator`` with ``pattern_type: sigma`` per Sigma rule (the rule's
YAML as the pattern); an ``attack-pattern`` per ATT&CK technique the rules are tagged with — with MITRE's
own STIX id, so a consumer that holds the ATT&CK bundle links them — and ``indicates`` relationships from
each rule to its techniques. Everything is created by a ``ctistudio`` identity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import stix2

from ctistudio.errors import InvalidInput
from ctistudio.export.indicators import Ioc, indicators
from ctistudio.export.material import ExportArticle, ExportRule, ExportSet
from ctistudio.sigma.attack import technique_refs

# A fixed identity, so every bundle ctistudio writes names the same producer.
IDENTITY_ID = "identity--7a2f0d4e-3c1b-4e8a-9f61-2b5d8c0e4a17"
_PATTERNS: dict[str, str] = {
    "ipv4": "[ipv4-addr:value = {v}]",
    "ipv6": "[ipv6-addr:value = {v}]",
    "domain": "[domain-name:value = {v}]",
    "url": "[url:value = {v}]",
    "md5": "[file:hashes.MD5 = {v}]",
    "sha1": "[file:hashes.'SHA-1' = {v}]",
    "sha256": "[file:hashes.'SHA-256' = {v}]",
}


def stix_pattern(ioc: Ioc) -> str:
    """The STIX pattern of one indicator; quotes and backslashes in the value are escaped."""
    quoted = "'" + ioc.value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return _PATTERNS[ioc.type].format(v=quoted)


def _when(article: ExportArticle | None, fallback: datetime) -> datetime:
    moment = (article.published_at or article.created_at) if article is not None else fallback
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _article_reference(article: ExportArticle) -> dict[str, Any]:
    reference: dict[str, Any] = {"source_name": "ctistudio", "external_id": f"article-{article.id}"}
    if article.url:
        reference["url"] = article.url
    reference["description"] = article.title
    return reference


def _ioc_indicator(ioc: Ioc, identity: stix2.Identity, article: ExportArticle | None) -> stix2.Indicator:
    return stix2.Indicator(
        name=f"{ioc.type} {ioc.value}",
        description=(ioc.evidence or f"{ioc.type} named in the article")[:1000],
        pattern=stix_pattern(ioc),
        pattern_type="stix",
        valid_from=_when(article, datetime.now(UTC)),
        indicator_types=["malicious-activity"],
        created_by_ref=identity,
    )


def _rule_indicator(rule: ExportRule, identity: stix2.Identity) -> stix2.Indicator:
    created = rule.created_at if rule.created_at.tzinfo else rule.created_at.replace(tzinfo=UTC)
    return stix2.Indicator(
        name=rule.title,
        description=rule.description or f"Sigma rule {rule.rule_uuid or rule.id} ({rule.review_state})",
        pattern=rule.yaml,
        pattern_type="sigma",
        valid_from=created,
        indicator_types=["malicious-activity"],
        labels=[f"sigma-{rule.review_state}", *([f"level-{rule.level}"] if rule.level else [])],
        external_references=[
            {"source_name": "sigma", "external_id": rule.rule_uuid or str(rule.id), "description": "Sigma rule id"}
        ],
        created_by_ref=identity,
    )


def _attack_pattern(technique_id: str, identity: stix2.Identity) -> stix2.AttackPattern | None:
    ref = technique_refs().get(technique_id)
    if ref is None:
        return None
    return stix2.AttackPattern(
        id=ref.stix_id,
        name=ref.name,
        external_references=[{"source_name": "mitre-attack", "external_id": ref.technique_id, "url": ref.url}],
        kill_chain_phases=[{"kill_chain_name": "mitre-attack", "phase_name": t} for t in ref.tactics],
        created_by_ref=identity,
    )


def stix_bundle(export: ExportSet) -> stix2.Bundle:
    """The export as a STIX 2.1 bundle (see the module docstring for what it holds)."""
    identity = stix2.Identity(id=IDENTITY_ID, name="ctistudio", identity_class="system")
    objects: list[Any] = [identity]
    patterns: dict[str, stix2.AttackPattern] = {}
    for article in export.articles:
        refs: list[Any] = []
        for ioc in indicators(o for o in export.observables if o.article_id == article.id):
            indicator = _ioc_indicator(ioc, identity, article)
            objects.append(indicator)
            refs.append(indicator)
        for rule in (r for r in export.rules if r.article_id == article.id):
            indicator = _rule_indicator(rule, identity)
            objects.append(indicator)
            refs.append(indicator)
            for technique in rule.techniques:
                if technique not in patterns:
                    pattern = _attack_pattern(technique, identity)
                    if pattern is None:
                        continue
                    patterns[technique] = pattern
                    objects.append(pattern)
                relation = stix2.Relationship(indicator, "indicates", patterns[technique], created_by_ref=identity)
                objects.append(relation)
                refs.extend([patterns[technique], relation])
        if not refs:
            continue
        objects.append(
            stix2.Report(
                name=article.title,
                description=f"Indicators and Sigma rules ctistudio derived from article {article.id}.",
                published=_when(article, datetime.now(UTC)),
                report_types=["threat-report"],
                object_refs=list(dict.fromkeys(o.id for o in refs)),
                external_references=[_article_reference(article)],
                created_by_ref=identity,
            )
        )
    if len(objects) == 1:
        raise InvalidInput(
            f"{export.name}: no network or hash indicator and no exportable Sigma rule, so the bundle would be empty",
            fix="Export an article whose run found indicators or rules (see `ctistudio runs show ID`).",
        )
    return stix2.Bundle(objects=objects, allow_custom=False)


def stix_json(export: ExportSet) -> str:
    return stix_bundle(export).serialize(pretty=True)


def stix_problems(text: str) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` of OASIS's STIX 2.1 validator for a bundle's JSON text."""
    from stix2validator import ValidationOptions, validate_string

    result = validate_string(text, ValidationOptions(version="2.1"))
    results: Iterable[Any] = result if isinstance(result, list) else [result]
    errors: list[str] = []
    warnings: list[str] = []
    for item in results:
        errors += [str(e) for e in item.errors]
        warnings += [str(w) for w in item.warnings]
    return errors, warnings


def bundle_counts(text: str) -> dict[str, int]:
    """How many objects of each type a bundle holds (``indicator``, ``report`` …)."""
    counts: dict[str, int] = {}
    for item in json.loads(text).get("objects", []):
        counts[item["type"]] = counts.get(item["type"], 0) + 1
    return counts
