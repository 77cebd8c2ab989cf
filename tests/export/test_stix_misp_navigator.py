"""Each export of the demo article's run, checked by its own validator: stix2-validator, PyMISP, the layer schema."""

from __future__ import annotations

import csv
import io
import json

import jsonschema
import pytest
from tests.export.demo_run import ONENOTE_RULE, RUN_KEY_RULE

from ctistudio.errors import InvalidInput
from ctistudio.export import collect, render
from ctistudio.export.navigator import layer_problems, layer_schema
from ctistudio.export.stix import bundle_counts, stix_problems
from ctistudio.store import Store


def test_stix_bundle_of_the_demo_run_passes_the_oasis_validator(store: Store, demo_run: int):
    text = render(collect(store, run_id=demo_run), "stix").text
    errors, _warnings = stix_problems(text)
    assert errors == []
    bundle = json.loads(text)
    counts = bundle_counts(text)
    # 3 public indicators (the 10.x host is the victim's, not an indicator) + 2 Sigma rules
    assert counts["indicator"] == 5 and counts["report"] == 1 and counts["identity"] == 1
    assert counts["attack-pattern"] == 3 and counts["relationship"] == 3
    by_type: dict[str, list[dict]] = {}
    for item in bundle["objects"]:
        by_type.setdefault(item["type"], []).append(item)
    patterns = {i["pattern"] for i in by_type["indicator"] if i["pattern_type"] == "stix"}
    assert patterns == {
        "[domain-name:value = 'lantern-sync.workers.dev']",
        "[url:value = 'https://cdn-update.lantern-sync.workers.dev/s2.ps1']",
        "[ipv4-addr:value = '198.51.100.23']",
    }
    sigma = {i["name"]: i for i in by_type["indicator"] if i["pattern_type"] == "sigma"}
    assert sigma["OneNote Spawning Mshta"]["pattern"] == ONENOTE_RULE
    assert sigma["Lantern Loader Run Key Persistence"]["pattern"] == RUN_KEY_RULE
    techniques = {p["external_references"][0]["external_id"]: p for p in by_type["attack-pattern"]}
    assert set(techniques) == {"T1566.001", "T1218.005", "T1547.001"}
    assert techniques["T1218.005"]["name"] == "Mshta"
    report = by_type["report"][0]
    assert report["name"] == "Operation Paper Lantern"
    assert report["external_references"][0]["url"] == "https://example.org/ctistudio/demo/operation-paper-lantern"
    ids = {item["id"] for item in bundle["objects"]}
    assert set(report["object_refs"]) <= ids and len(report["object_refs"]) == 5 + 3 + 3
    relations = {(r["source_ref"], r["target_ref"]) for r in by_type["relationship"]}
    assert (sigma["OneNote Spawning Mshta"]["id"], techniques["T1218.005"]["id"]) in relations


def test_the_stix_validator_catches_a_broken_bundle(store: Store, demo_run: int):
    bundle = json.loads(render(collect(store, run_id=demo_run), "stix").text)
    indicator = next(o for o in bundle["objects"] if o["type"] == "indicator")
    del indicator["pattern_type"]
    errors, _ = stix_problems(json.dumps(bundle))
    assert any("pattern_type" in e for e in errors)


def test_misp_event_loads_back_in_pymisp_with_every_attribute(store: Store, demo_run: int):
    from pymisp import MISPEvent

    text = render(collect(store, run_id=demo_run), "misp").text
    event = MISPEvent()
    event.load(text)
    got = sorted((a.type, a.value.strip()) for a in event.attributes)
    assert got == sorted(
        [
            ("link", "https://example.org/ctistudio/demo/operation-paper-lantern"),
            ("domain", "lantern-sync.workers.dev"),
            ("url", "https://cdn-update.lantern-sync.workers.dev/s2.ps1"),
            ("ip-dst", "198.51.100.23"),
            ("regkey", "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\LanternUpdate"),
            ("sigma", ONENOTE_RULE.strip()),
            ("sigma", RUN_KEY_RULE.strip()),
        ]
    )
    assert len(json.loads(text)["Attribute"]) == len(event.attributes)
    assert event.info == f"Operation Paper Lantern (run {demo_run})"
    onenote = next(a for a in event.attributes if a.type == "sigma" and "OneNote" in a.value)
    assert {t.name for t in onenote.tags} == {
        'misp-galaxy:mitre-attack-pattern="Spearphishing Attachment - T1566.001"',
        'misp-galaxy:mitre-attack-pattern="Mshta - T1218.005"',
    }
    assert all(a.to_ids for a in event.attributes if a.type in ("domain", "url", "ip-dst"))


def test_ioc_csv_lists_the_indicators(store: Store, demo_run: int):
    text = render(collect(store, run_id=demo_run), "csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["type"], r["value"]) for r in rows] == [
        ("domain", "lantern-sync.workers.dev"),
        ("url", "https://cdn-update.lantern-sync.workers.dev/s2.ps1"),
        ("ip-dst", "198.51.100.23"),
    ]
    assert all(r["article"] == "https://example.org/ctistudio/demo/operation-paper-lantern" for r in rows)


def test_navigator_layer_matches_the_layer_schema(store: Store, approved_run: int):
    layer = json.loads(render(collect(store, approved=True), "navigator").text)
    jsonschema.Draft202012Validator(layer_schema()).validate(layer)
    assert layer_problems(layer) == []
    scores = {t["techniqueID"]: t["score"] for t in layer["techniques"]}
    assert scores == {"T1566.001": 1, "T1218.005": 1, "T1547.001": 1}
    assert layer["versions"]["layer"] == "4.5" and layer["domain"] == "enterprise-attack"


def test_the_layer_schema_refuses_what_the_navigator_would(store: Store, approved_run: int):
    layer = json.loads(render(collect(store, approved=True), "navigator").text)
    assert layer_problems({**layer, "domain": "enterprise"})  # not a domain the Navigator knows
    broken = {**layer, "techniques": [{"techniqueID": "1218.005", "score": 1}]}
    assert any("techniqueID" in p or "1218.005" in p for p in layer_problems(broken))
    assert layer_problems({**layer, "gradient": {"colors": ["#fff", "#000"], "minValue": 3, "maxValue": 3}})


def test_bad_selections_are_refused_with_a_fix(store: Store, demo_article_id: int):
    with pytest.raises(InvalidInput) as no_run:
        collect(store, article_id=demo_article_id)
    assert "no pipeline run" in no_run.value.message and "ctistudio run --article" in (no_run.value.fix or "")
    with pytest.raises(InvalidInput) as none_approved:
        collect(store, approved=True)
    assert "no approved rules" in none_approved.value.message and "queue approve" in (none_approved.value.fix or "")
    with pytest.raises(InvalidInput):
        collect(store, article_id=demo_article_id, approved=True)
