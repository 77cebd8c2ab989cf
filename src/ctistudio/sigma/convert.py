"""Convert a Sigma rule to SIEM queries with pySigma backends (Splunk SPL, Elastic Lucene, ES|QL, EQL).

Windows rules go through the backend's Windows processing pipeline (``splunk_windows_pipeline`` for
Splunk, ``ecs_windows`` for Elastic, which maps Sysmon-style field names to ECS); rules for other products
are converted with their field names as written. A rule pySigma cannot convert raises
:class:`~ctistudio.sigma.errors.ConversionFailed` with pySigma's reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from ctistudio.errors import InvalidInput
from ctistudio.sigma.errors import ConversionFailed
from ctistudio.sigma.rule_yaml import error_message, error_position, load_documents


@dataclass(frozen=True)
class _Target:
    description: str
    backend: Callable[[Any], Any]  # processing pipeline (or None) -> backend instance
    windows_pipeline: Callable[[], Any]
    pipeline_name: str


def _splunk(pipeline: Any) -> Any:
    from sigma.backends.splunk import SplunkBackend

    return SplunkBackend(processing_pipeline=pipeline)


def _splunk_windows() -> Any:
    from sigma.pipelines.splunk import splunk_windows_pipeline

    return splunk_windows_pipeline()


def _elastic(kind: str) -> Callable[[Any], Any]:
    def build(pipeline: Any) -> Any:
        from sigma.backends import elasticsearch

        cls = {
            "lucene": elasticsearch.LuceneBackend,
            "esql": elasticsearch.ESQLBackend,
            "eql": elasticsearch.EqlBackend,
        }
        return cls[kind](processing_pipeline=pipeline)

    return build


def _ecs_windows() -> Any:
    from sigma.pipelines.elasticsearch import ecs_windows

    return ecs_windows()


TARGETS: dict[str, _Target] = {
    "splunk": _Target("Splunk SPL search", _splunk, _splunk_windows, "splunk_windows"),
    "elastic": _Target("Elasticsearch Lucene query (Kibana)", _elastic("lucene"), _ecs_windows, "ecs_windows"),
    "esql": _Target("Elasticsearch ES|QL query", _elastic("esql"), _ecs_windows, "ecs_windows"),
    "eql": _Target("Elasticsearch EQL query", _elastic("eql"), _ecs_windows, "ecs_windows"),
}


class Conversion(BaseModel):
    """Queries for one rule and one target (a rule may yield several queries)."""

    target: str
    backend: str
    pipeline: str | None
    queries: list[str]


def _rule_dict(rule: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(rule, Mapping):
        return dict(rule)
    try:
        documents = [d for d in load_documents(rule) if d is not None]
    except yaml.YAMLError as exc:
        line, _ = error_position(exc)
        where = f" at line {line}" if line else ""
        raise ConversionFailed(
            f"the rule is not valid YAML{where}: {error_message(exc)}",
            fix="Run `ctistudio sigma validate RULE.yml` and fix the reported issues.",
        ) from exc
    if len(documents) != 1 or not isinstance(documents[0], Mapping):
        raise ConversionFailed(
            "expected exactly one Sigma rule (a YAML mapping)",
            fix="Put one rule per file; run `ctistudio sigma validate RULE.yml` for details.",
        )
    return dict(documents[0])


def convert(rule: str | Mapping[str, Any], target: str) -> Conversion:
    """Convert one rule (YAML text or parsed mapping) to ``target`` (``splunk``, ``elastic``, ``esql``, ``eql``)."""
    spec = TARGETS.get(target.lower())
    if spec is None:
        raise InvalidInput(f"unknown conversion target {target!r}", fix=f"Use one of: {', '.join(TARGETS)}.")
    data = _rule_dict(rule)
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError

    logsource = data.get("logsource") if isinstance(data.get("logsource"), Mapping) else {}
    windows = str(logsource.get("product", "")).lower() == "windows"  # type: ignore[union-attr]
    try:
        collection = SigmaCollection.from_dicts([data])
        pipeline = spec.windows_pipeline() if windows else None
        backend = spec.backend(pipeline)
        queries = backend.convert(collection)
    except (SigmaError, NotImplementedError) as exc:  # NotImplementedError: a feature the backend lacks
        reason = str(exc.args[0]) if exc.args else str(exc)
        raise ConversionFailed(
            f"pySigma cannot convert this rule to {target}: {reason}",
            fix="Run `ctistudio sigma validate RULE.yml`; if the rule is valid, the backend does not support one "
            "of its features (e.g. a modifier or keyword search): rewrite that part or pick another target.",
        ) from exc
    except (ValueError, TypeError, KeyError) as exc:  # pySigma's parsing of malformed rules
        raise ConversionFailed(
            f"pySigma cannot read this rule: {type(exc).__name__}: {exc}",
            fix="Run `ctistudio sigma validate RULE.yml` and fix the reported issues.",
        ) from exc
    texts = [str(q) for q in queries]
    if not texts:
        raise ConversionFailed(
            f"pySigma produced no {target} query for this rule",
            fix="Check the rule's logsource and detection with `ctistudio sigma validate RULE.yml`.",
        )
    return Conversion(
        target=target.lower(),
        backend=type(backend).__name__,
        pipeline=spec.pipeline_name if windows else None,
        queries=texts,
    )
