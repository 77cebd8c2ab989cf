"""What a finished run must own up to: the parts of its output that are a deterministic floor, not the model's.

A run on a weak or broken model still succeeds — the floors (hunt score, pre-extractor, floor rules) keep
its output useful — but it must say so. :func:`run_warnings` reads the steps' checkpoint outputs and returns
one line per finding; a run with any is *degraded*: the run page, the dashboard and ``runs show`` show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _rank(output: Mapping[str, Any]) -> list[str]:
    if output.get("origin") != "hunt_score":
        return []
    why = output.get("fallback_reason") or "the model's answer was unusable"
    return [f"rank: {why}; the score {output.get('score')} comes from the deterministic hunt score"]


def _extract(output: Mapping[str, Any]) -> list[str]:
    fallen = [a["kind"] for a in output.get("agents", []) if a.get("mode") == "pattern"]
    out = []
    if fallen:
        out.append(
            f"extract: no usable model answer from the {', '.join(fallen)} agent"
            f"{'s' if len(fallen) > 1 else ''}; their observables are the pre-extractor's alone"
        )
    origins = output.get("by_origin") or {}
    if not fallen and origins and not origins.get("model") and any(origins.values()):
        out.append("extract: the model confirmed none of the observables; all of them are the pre-extractor's")
    return out


def _sigma(output: Mapping[str, Any]) -> list[str]:
    rules = output.get("rules", [])
    if not rules:
        return []
    out = []
    invalid = sum(1 for r in rules if not r.get("valid"))
    if invalid:
        out.append(f"sigma: {invalid} of {len(rules)} rules are invalid (see each rule's issues)")
    floor = [r for r in rules if r.get("origin") == "floor"]
    if floor:
        groups = sorted({str(r.get("group")) for r in floor})
        scope = "all" if len(floor) == len(rules) else f"{len(floor)} of {len(rules)}"
        out.append(
            f"sigma: {scope} rules built by the deterministic floor, not the model ({', '.join(groups)}); "
            "review them as drafts"
        )
    return out


def run_warnings(outputs: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    """One line per part of the run's output that came from a floor or is unusable (empty: a clean run)."""
    readers = {"rank": _rank, "extract": _extract, "sigma": _sigma}
    return [line for step, read in readers.items() for line in read(outputs.get(step) or {})]
