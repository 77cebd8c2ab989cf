"""MISP events with PyMISP's ``MISPEvent``, and a plain CSV list of indicators.

One event per export: the report's title as ``info``, the article's publication date, a ``link`` attribute
per article, typed attributes for the indicators (``ip-dst``, ``domain``, ``url``, ``md5``/``sha1``/
``sha256``) and registry keys (``regkey``), and one ``sigma`` attribute per rule. ATT&CK techniques become
MISP galaxy tags (``misp-galaxy:mitre-attack-pattern="Mshta - T1218.005"``) on the rule and the event.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from ctistudio.errors import InvalidInput
from ctistudio.export.indicators import Ioc, indicators
from ctistudio.export.material import ExportSet
from ctistudio.sigma.attack import technique_refs

MISP_TYPES = {
    "ipv4": "ip-dst",
    "ipv6": "ip-dst",
    "domain": "domain",
    "url": "url",
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
}
CSV_COLUMNS = ["type", "value", "category", "to_ids", "comment", "article"]


def attack_tag(technique_id: str) -> str | None:
    """The MISP galaxy tag of a technique (``misp-galaxy:mitre-attack-pattern="Mshta - T1218.005"``)."""
    ref = technique_refs().get(technique_id)
    return f'misp-galaxy:mitre-attack-pattern="{ref.name} - {ref.technique_id}"' if ref else None


def _comment(ioc: Ioc, export: ExportSet) -> str:
    article = export.article(ioc.article_id)
    where = f"from {article.title}" if article else ""
    return (f"{where}: {ioc.evidence}" if ioc.evidence else where)[:1000]


def misp_event(export: ExportSet) -> Any:
    """The export as a ``pymisp.MISPEvent`` (not sent anywhere: written to a file or downloaded)."""
    from pymisp import MISPEvent

    iocs = indicators(export.observables)
    registry = [o for o in export.observables if o.kind == "registry"]
    if not iocs and not export.rules and not registry:
        raise InvalidInput(
            f"{export.name}: no indicator, registry key or exportable Sigma rule, so the event would be empty",
            fix="Export an article whose run found indicators or rules (see `ctistudio runs show ID`).",
        )
    event = MISPEvent()
    event.info = export.name[:1000]
    dates = [a.published_at or a.created_at for a in export.articles]
    event.set_date((min(dates) if dates else datetime.now(UTC)).date())
    event.distribution = 0  # your organisation only: sharing wider is the analyst's decision
    event.threat_level_id = 2
    event.analysis = 2
    for article in export.articles:
        if article.url:
            event.add_attribute("link", article.url, comment=article.title[:1000], to_ids=False)
    for ioc in iocs:
        event.add_attribute(MISP_TYPES[ioc.type], ioc.value, comment=_comment(ioc, export), to_ids=True)
    for observable in registry:
        event.add_attribute("regkey", observable.value, comment=(observable.evidence or "")[:1000], to_ids=False)
    tags: dict[str, None] = {}
    for rule in export.rules:
        attribute = event.add_attribute(
            "sigma", rule.yaml, comment=f"{rule.title} (Sigma rule {rule.rule_uuid or rule.id}, {rule.review_state})"
        )
        for technique in rule.techniques:
            tag = attack_tag(technique)
            if tag:
                attribute.add_tag(tag)
                tags[tag] = None
    for tag in tags:
        event.add_tag(tag)
    return event


def misp_json(export: ExportSet) -> str:
    return str(misp_event(export).to_json(indent=2))


def ioc_csv(export: ExportSet) -> str:
    """The indicators as CSV (``type,value,category,to_ids,comment,article``), MISP's attribute types."""
    iocs = indicators(export.observables)
    if not iocs:
        raise InvalidInput(
            f"{export.name}: no network or hash indicator to list",
            fix="Export an article whose run found domains, addresses, URLs or hashes, or use the JSON event.",
        )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for ioc in iocs:
        article = export.article(ioc.article_id)
        category = "Network activity" if ioc.type in ("ipv4", "ipv6", "domain", "url") else "Payload delivery"
        writer.writerow(
            [
                MISP_TYPES[ioc.type],
                ioc.value,
                category,
                "1",
                (ioc.evidence or "")[:300],
                (article.url or article.title) if article else "",
            ]
        )
    return out.getvalue()
