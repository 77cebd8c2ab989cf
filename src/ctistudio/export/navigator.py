"""ATT&CK coverage: a Navigator layer (format 4.5) and the tactic × technique matrix of the Coverage page.

A technique's score is the number of rules tagged with it (``attack.t1218.005``); a sub-technique also
counts toward its parent's cell in the matrix. Technique names, tactics and their order come from the
offline ATT&CK data (:mod:`ctistudio.sigma.attack`), never from the network.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from typing import Any

from pydantic import BaseModel, Field

from ctistudio.errors import InvalidInput
from ctistudio.export.material import ExportRule, ExportSet
from ctistudio.resources import read_text
from ctistudio.sigma.attack import attack_catalog, tactic_names, technique_refs

NAVIGATOR_VERSION = "5.2.0"
LAYER_VERSION = "4.5"
# The enterprise matrix's columns, left to right (ATT&CK's own order, not the tactic IDs' order).
MATRIX_TACTICS = (
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
)
GRADIENT = ["#ffffff", "#9ecae1", "#08519c"]


def rules_by_technique(rules: Iterable[ExportRule]) -> dict[str, list[ExportRule]]:
    """Technique ID → the rules tagged with it (only techniques the packaged ATT&CK data knows)."""
    known = technique_refs()
    out: dict[str, list[ExportRule]] = {}
    for rule in rules:
        for technique in rule.techniques:
            if technique in known:
                out.setdefault(technique, []).append(rule)
    return out


def navigator_layer(export: ExportSet) -> dict[str, Any]:
    """The export's rules as a Navigator layer: one scored technique per tagged technique."""
    covered = rules_by_technique(export.rules)
    if not covered:
        raise InvalidInput(
            f"{export.name}: no rule carries an ATT&CK technique tag (attack.tNNNN), so the layer would be empty",
            fix="Add technique tags to the rules (`ctistudio queue edit ID`) or export other rules.",
        )
    refs = technique_refs()
    techniques = []
    for technique_id in sorted(covered):
        rules = covered[technique_id]
        techniques.append(
            {
                "techniqueID": technique_id,
                "score": len(rules),
                "comment": "; ".join(r.title for r in rules)[:2000],
                "enabled": True,
                "metadata": [{"name": "Sigma rule", "value": f"{r.title} ({r.rule_uuid or r.id})"} for r in rules],
                "showSubtechniques": False,
            }
        )
        if "." in technique_id and technique_id.split(".")[0] in refs:
            techniques[-1]["comment"] += f" (sub-technique of {technique_id.split('.')[0]})"
    layer = {
        "name": export.name[:200],
        "versions": {
            "attack": attack_catalog().version.split(".")[0],
            "navigator": NAVIGATOR_VERSION,
            "layer": LAYER_VERSION,
        },
        "domain": "enterprise-attack",
        "description": f"ATT&CK techniques covered by {len(export.rules)} Sigma rule(s), scored by rule count "
        "(ctistudio).",
        "sorting": 3,
        "layout": {"layout": "side", "showID": True, "showName": True, "expandedSubtechniques": "annotated"},
        "hideDisabled": False,
        "techniques": techniques,
        "gradient": {"colors": GRADIENT, "minValue": 0, "maxValue": max(2, max(t["score"] for t in techniques))},
        "legendItems": [{"label": "rules covering the technique", "color": GRADIENT[-1]}],
        "metadata": [{"name": "articles", "value": ", ".join(a.title for a in export.articles)[:2000]}],
    }
    problems = layer_problems(layer)
    if problems:  # a bug of ours, not the user's: say so plainly
        raise RuntimeError("the Navigator layer does not match the 4.5 format: " + "; ".join(problems))
    return layer


def navigator_json(export: ExportSet) -> str:
    return json.dumps(navigator_layer(export), indent=2, ensure_ascii=False)


@cache
def layer_schema() -> dict[str, Any]:
    """The JSON Schema of layer format 4.5 (written from MITRE's format definition, shipped with ctistudio)."""
    return json.loads(read_text("export/navigator_layer.schema.json"))


def layer_problems(layer: Any) -> list[str]:
    """What makes ``layer`` not a valid 4.5 layer (empty: valid)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(layer_schema())
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '(layer)'}: {e.message}" for e in validator.iter_errors(layer)
    ]
    gradient = layer.get("gradient") if isinstance(layer, dict) else None
    if isinstance(gradient, dict) and not gradient.get("maxValue", 0) > gradient.get("minValue", 0):
        problems.append("gradient: maxValue must be greater than minValue")
    return problems


# -- the Coverage page's matrix -------------------------------------------------------------------------
class CoverageCell(BaseModel):
    technique_id: str
    name: str
    rules: int  # rules tagged with the technique or one of its sub-techniques
    sub_techniques: list[str] = Field(default_factory=list)  # covered sub-technique IDs


class CoverageColumn(BaseModel):
    tactic: str
    name: str
    cells: list[CoverageCell]

    @property
    def covered(self) -> int:
        return sum(1 for c in self.cells if c.rules)


class CoverageMatrix(BaseModel):
    attack_version: str
    columns: list[CoverageColumn]
    rules: int
    techniques: dict[str, list[ExportRule]] = Field(default_factory=dict)  # tagged ID → rules

    @property
    def max_rules(self) -> int:
        return max((c.rules for col in self.columns for c in col.cells), default=0)


def coverage_matrix(rules: list[ExportRule]) -> CoverageMatrix:
    """Every tactic's techniques (parents), each with how many rules cover it or its sub-techniques."""
    refs = technique_refs()
    covered = rules_by_technique(rules)
    parents: dict[str, set[int]] = {}
    subs: dict[str, list[str]] = {}
    for technique_id, tagged in covered.items():
        parent = technique_id.split(".")[0]
        parents.setdefault(parent, set()).update(r.id for r in tagged)
        if "." in technique_id:
            subs.setdefault(parent, []).append(technique_id)
    names = tactic_names()
    columns = []
    for tactic in MATRIX_TACTICS:
        ids = sorted(t for t, ref in refs.items() if "." not in t and tactic in ref.tactics)
        cells = [
            CoverageCell(
                technique_id=t, name=refs[t].name, rules=len(parents.get(t, ())), sub_techniques=sorted(subs.get(t, []))
            )
            for t in ids
        ]
        cells.sort(key=lambda c: (-c.rules, c.name))
        columns.append(CoverageColumn(tactic=tactic, name=names.get(tactic, tactic), cells=cells))
    return CoverageMatrix(
        attack_version=attack_catalog().version, columns=columns, rules=len(rules), techniques=covered
    )
