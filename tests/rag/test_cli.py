"""``ctistudio search``, ``chat`` and ``rag`` end to end: a real SQLite file, the LM Studio double over HTTP."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ctistudio.cli.main import app
from ctistudio.config import load_settings
from ctistudio.store import Store

from .conftest import add_corpus


@pytest.fixture
def cli(double_settings, corpus, monkeypatch):
    with Store(load_settings(env_file=None)) as store:
        add_corpus(store, corpus)
    return CliRunner()


def test_backfill_status_search_and_one_shot_chat(cli, lmstudio_double):
    done = cli.invoke(app, ["rag", "backfill", "--no-rules", "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["articles"] == 12 and report["chunks"] >= 12
    assert report["model"] == "lmstudio/text-embedding-nomic-embed-text-v1.5/64"

    status = json.loads(cli.invoke(app, ["rag", "status", "--json"]).stdout)
    assert status["chunks"] == report["chunks"] and status["vector_backend"]["name"] == "numpy"
    assert status["keyword_backend"] == "fts5" and not status["mixed_models"]

    found = cli.invoke(app, ["search", "vssadmin delete shadows", "--json", "--rules", "0"])
    assert found.exit_code == 0, found.output
    results = json.loads(found.stdout)
    assert set(results) >= {"query", "chunks", "rules", "embedding_model", "timings_ms"}
    top = results["chunks"][0]
    assert top["title"].startswith("Ransomware deletes shadow copies") and top["score"] > 0
    assert set(top) >= {"chunk_id", "article_id", "url", "score", "vector_score", "keyword_score", "text"}

    linux = json.loads(cli.invoke(app, ["search", "miner", "--platform", "linux", "--json", "--rules", "0"]).stdout)
    assert linux["chunks"] and all("linux" in c["platforms"] for c in linux["chunks"])

    lmstudio_double.reply("Shadow copies were deleted with vssadmin [1].")
    chat = cli.invoke(app, ["chat", "How were shadow copies deleted?", "--provider", "lmstudio"])
    assert chat.exit_code == 0, chat.output
    assert "Shadow copies were deleted with vssadmin [1]." in chat.stdout
    assert "*[1] Ransomware deletes shadow copies" in chat.stdout
    assert "provider lmstudio" in chat.stdout and "tokens/s" in chat.stdout


def test_chat_json_and_bad_input(cli, lmstudio_double):
    assert cli.invoke(app, ["rag", "backfill", "--no-rules"]).exit_code == 0
    lmstudio_double.reply("Rubeus kerberoast [1].")
    out = cli.invoke(app, ["chat", "kerberoasting with Rubeus", "--provider", "lmstudio", "--json"])
    reply = json.loads(out.stdout)
    assert reply["answer"]["sources"][0]["url"] == "https://example.test/reports/kerberoasting-rubeus"
    assert reply["answer"]["provider"] == "lmstudio" and reply["session_id"] >= 1
    bad = cli.invoke(app, ["search", "x", "--since", "last tuesday"])
    assert bad.exit_code == 1 and "--since" in bad.stderr and "2025-01-31" in bad.stderr


def test_interactive_session_switches_provider(cli, lmstudio_double, openai_double, monkeypatch):
    assert cli.invoke(app, ["rag", "backfill", "--no-rules"]).exit_code == 0
    lmstudio_double.reply("From LM Studio [1].")
    openai_double.reply("From OpenAI [1].")
    script = "certutil urlcache download\n/provider openai\nand the rundll32 step?\n/quit\n"
    out = cli.invoke(app, ["chat", "--provider", "lmstudio"], input=script)
    assert out.exit_code == 0, out.output
    assert "From LM Studio [1]." in out.stdout and "From OpenAI [1]." in out.stdout
    assert "provider lmstudio" in out.stdout and "provider openai" in out.stdout
    sent = openai_double.requests_to("/v1/chat/completions")[-1].body["messages"]
    assert sent[1]["content"] == "certutil urlcache download", "the conversation carried over"


def test_search_and_chat_index_new_articles_first(cli, lmstudio_double):
    skipped = json.loads(cli.invoke(app, ["search", "vssadmin", "--no-index", "--json", "--rules", "0"]).stdout)
    assert skipped["chunks"] == [] and skipped["corpus_chunks"] == 0
    found = cli.invoke(app, ["search", "vssadmin shadows", "--json", "--rules", "0"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["chunks"][0]["title"].startswith("Ransomware deletes shadow copies")
    status = json.loads(cli.invoke(app, ["rag", "status", "--json"]).stdout)
    assert status["chunks"] > 0, "the articles ingested before were indexed by the search"
