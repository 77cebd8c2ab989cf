"""Junk filter, prompt files, output models and the eval scorer (all deterministic)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ctistudio.errors import InvalidInput
from ctistudio.pipeline.evals import PRF, EvalReport, kind_of_set, load_cases, render_markdown, score_items
from ctistudio.pipeline.junk import LinearChunkClassifier, filter_junk
from ctistudio.pipeline.models import band_for
from ctistudio.pipeline.prompts import load_prompt, prompt_versions
from ctistudio.pipeline.rank import rank_schema
from ctistudio.pipeline.selection import selection_schema
from ctistudio.resources import demo_article

PAGE = """[Home](/) | [Blog](/blog) | [Research](/research) | [Contact](/contact)

# Loader analysis

The loader ran `cmd.exe /c whoami /all` right after the first beacon, then slept for an hour.

Subscribe to our newsletter to get the latest research in your inbox!

The operators prefer living-off-the-land tools over custom malware, which keeps detections noisy.

Request a demo of our platform today. Our experts can help protect your business.

© 2026 Example Security. All rights reserved. Privacy Policy | Terms of Use
"""


def test_junk_filter_removes_navigation_and_marketing_and_keeps_the_analysis():
    result = filter_junk(PAGE)
    assert "whoami /all" in result.text
    assert "living-off-the-land" in result.text
    assert "# Loader analysis" in result.text
    for junk in ("Subscribe", "Request a demo", "All rights reserved", "[Blog]"):
        assert junk not in result.text
    assert {r.reason for r in result.removed} == {"navigation", "boilerplate"}
    assert result.removed_chars > 100


def test_junk_filter_never_removes_technical_chunks_even_with_marketing_words():
    text = "Share this: the dropper ran `reg add HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run /v x`."
    assert filter_junk(text).text == text


def test_junk_filter_keeps_every_artefact_of_the_demo_article():
    article = demo_article()
    assert filter_junk(article).removed == []


def test_flattened_html_is_judged_sentence_by_sentence():
    wall = ("The intrusion began with a phishing mail and a loader that beaconed every minute. " * 20) + (
        "Sign up for our newsletter to get more research. The loader then ran nltest /dclist: on the host."
    )
    result = filter_junk(wall)
    assert "newsletter" not in result.text and "nltest /dclist:" in result.text


def test_learned_classifier_loads_from_json_not_pickle(tmp_path: Path):
    model = LinearChunkClassifier({"roadshow": 4.0, "keynote": 3.0, "loader": -4.0}, bias=-1.0)
    path = tmp_path / "junk.json"
    model.save(path)
    loaded = LinearChunkClassifier.load(path)
    assert loaded.is_junk("Meet us at the roadshow keynote")
    assert not loaded.is_junk("The loader decrypts its configuration with RC4")
    text = "Meet our team at the keynote of the spring roadshow.\n\nThe loader decrypts its config with RC4."
    result = filter_junk(text, classifier=loaded)
    assert [r.reason for r in result.removed] == ["classifier"]
    (tmp_path / "bad.json").write_bytes(b"\x80\x04\x95pickle")
    with pytest.raises(InvalidInput):
        LinearChunkClassifier.load(tmp_path / "bad.json")


def test_prompts_are_versioned_files_with_a_content_hash():
    rank = load_prompt("rank")
    assert rank.version >= 1 and rank.ref.startswith(f"rank@{rank.version}#")
    assert "huntability" in rank.body.lower()
    refs = prompt_versions(["rank", "extract_cmdline", "sigma_generate"])
    assert len(set(refs.values())) == 3
    # the ref is read from the file's front matter and hashes the body: name@version#10 hex digits
    assert re.fullmatch(r"sigma_generate@\d+#[0-9a-f]{10}", refs["sigma_generate"])


def test_bands_and_answer_schemas_are_small_grammars():
    assert [band_for(s) for s in (1, 3, 5, 7, 9, 12)] == ["none", "low", "moderate", "high", "excellent", "excellent"]
    rank = rank_schema(40)
    assert rank["properties"]["score"]["enum"] == list(range(1, 11))
    assert rank["properties"]["evidence"]["items"]["enum"][-1] == 40 and "evidence" not in rank_schema(0)["properties"]
    extract = selection_schema("cmdline", 3)
    assert extract["properties"]["keep"] == {
        "type": "array",
        "items": {"type": "integer", "enum": [1, 2, 3]},
        "maxItems": 3,
    }
    # no string bounds and no repetition bound on free strings: llama.cpp grammars grow with them
    for schema in (rank, extract, selection_schema("lineage", 0)):
        text = json.dumps(schema)
        assert "maxLength" not in text and schema["additionalProperties"] is False
    assert set(rank["required"]) == {"score", "reasons", "evidence"} and "required" not in extract
    assert "maxItems" not in json.dumps(extract["properties"]["new"])


def test_score_items_matches_after_normalisation():
    counts, missed, extra = score_items(
        ["CMD.exe /c  whoami", "evil[.]com", "net user x"], ["cmd.exe /c whoami", "evil.com", "ipconfig /all"]
    )
    assert (counts.tp, counts.fp, counts.fn) == (2, 1, 1)
    assert missed == ["ipconfig /all"] and extra == ["net user x"]
    assert (counts.precision, counts.recall) == (0.6667, 0.6667)
    assert PRF().precision == 1.0 and PRF(fn=2).precision == 0.0 and PRF(fp=1).recall == 1.0


def test_eval_sets_load_and_report_renders(tmp_path: Path):
    folder = tmp_path / "cmdline"
    folder.mkdir()
    (folder / "articles.json").write_text(
        json.dumps([{"url": "u1", "title": "T", "content": "x", "expected_count": 1}])
    )
    (folder / "ground_truth.json").write_text(json.dumps([{"url": "u1", "expected_items": ["a"]}]))
    [(article, label)] = load_cases(folder)
    assert article.title == "T" and label["expected_items"] == ["a"]
    assert kind_of_set(folder) == "cmdline"
    with pytest.raises(InvalidInput):
        kind_of_set(tmp_path)
    (folder / "ground_truth.json").write_text(json.dumps([{"url": "nope", "expected_items": []}]))
    with pytest.raises(InvalidInput, match="does not hold"):
        load_cases(folder)
    report = EvalReport(
        kind="extract",
        set="cmdline",
        set_path=str(folder),
        target="cmdline",
        mode="pattern",
        totals={"items": PRF(tp=1, fp=1, fn=0)},
        articles=[],
    )
    assert "| items | 0.500 | 1.000 | 0.667 | 1 | 1 | 0 |" in render_markdown(report)
