"""``ctistudio mcp`` driven by the MCP SDK's own client over stdio: initialize, tools/list, tool calls."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from ctistudio.store import Store
from ctistudio.testing.lmstudio_double import LMStudioDouble

TOOLS = {
    "list_articles",
    "search",
    "ask",
    "show_article",
    "show_run",
    "show_rule",
    "start_run",
    "list_queue",
    "approve_rule",
    "reject_rule",
}


def server(double: LMStudioDouble, store: Store, tmp_path: Path, *extra: str) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LMSTUDIO_", "CTISTUDIO_", "LLM_"))}
    env.update(double.env())
    env.update(
        LLM_PROVIDER="lmstudio",
        CTISTUDIO_EMBEDDING_PROVIDER="lmstudio",
        CTISTUDIO_DATABASE_URL=store.url,
        CTISTUDIO_DATA_DIR=str(tmp_path / "data"),
        CTISTUDIO_LOG_DIR=str(tmp_path / "logs"),
        CTISTUDIO_RETRY_BACKOFF="0.01",
    )
    return StdioServerParameters(
        command=sys.executable, args=["-m", "ctistudio.cli.main", "mcp", *extra], env=env, cwd=str(tmp_path)
    )


async def wait_for_run(client: Client, run_id: int) -> dict:
    for _ in range(300):
        shown = await client.call_tool("show_run", {"run_id": run_id})
        assert not shown.is_error, shown.content
        if shown.structured_content["status"] in ("succeeded", "failed", "cancelled", "gated"):
            return shown.structured_content
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


async def test_an_agent_searches_starts_a_run_and_cannot_write(analyst, store, demo_run, tmp_path):
    async with Client(server(analyst, store, tmp_path), mode="legacy", read_timeout_seconds=60) as client:
        assert client.server_info is not None and client.server_info.name == "ctistudio"
        listed = await client.list_tools()
        assert {t.name for t in listed.tools} == TOOLS
        by_name = {t.name: t for t in listed.tools}
        assert by_name["search"].annotations.read_only_hint is True
        assert "query" in by_name["search"].input_schema["properties"]

        found = await client.call_tool("search", {"query": "mshta spawned by OneNote notebook", "rules": 2})
        assert not found.is_error, found.content
        hits = found.structured_content["articles"]
        assert hits and hits[0]["title"] == "Operation Paper Lantern" and hits[0]["excerpt"]

        asked = await client.call_tool("ask", {"question": "Which process did OneNote spawn?", "provider": "lmstudio"})
        assert not asked.is_error, asked.content
        assert asked.structured_content["answer"] and asked.structured_content["session_id"] >= 1
        assert "Operation Paper Lantern" in {s["title"] for s in asked.structured_content["sources"]}

        articles = await client.call_tool("list_articles", {"search": "Paper Lantern"})
        article_id = articles.structured_content["result"][0]["id"]
        started = await client.call_tool("start_run", {"article_id": article_id, "provider": "lmstudio", "force": True})
        assert not started.is_error, started.content
        run = await wait_for_run(client, started.structured_content["run_id"])
        assert run["status"] == "succeeded" and run["article_id"] == article_id
        assert [s["name"] for s in run["steps"]][:3] == ["prepare", "rank", "extract"]

        queued = (await client.call_tool("list_queue", {})).structured_content["result"]
        demo_rules = [r for r in queued if r["run_id"] == demo_run]
        assert len(demo_rules) == 2
        refused = await client.call_tool("approve_rule", {"rule_id": demo_rules[0]["id"]})
        assert refused.is_error
        assert "read-only" in refused.content[0].text and "--allow-writes" in refused.content[0].text
        rule = await client.call_tool("show_rule", {"rule_id": demo_rules[0]["id"]})
        assert rule.structured_content["review_state"] == "pending"

        unknown = await client.call_tool("show_article", {"article_id": 999})
        assert unknown.is_error and "no article with id 999" in unknown.content[0].text


async def test_writes_with_allow_writes(analyst, store, demo_run, tmp_path):
    async with Client(
        server(analyst, store, tmp_path, "--allow-writes"), mode="legacy", read_timeout_seconds=60
    ) as client:
        queued = (await client.call_tool("list_queue", {})).structured_content["result"]
        rule_id = next(r["id"] for r in queued if r["run_id"] == demo_run)
        approved = await client.call_tool("approve_rule", {"rule_id": rule_id, "note": "from the agent"})
        assert not approved.is_error, approved.content
        assert approved.structured_content["review_state"] == "approved"
        assert approved.structured_content["reviewer_note"] == "from the agent"


@pytest.fixture
def http_port(analyst, store, tmp_path) -> Iterator[int]:
    """``ctistudio mcp --http`` in a child process on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    params = server(analyst, store, tmp_path, "--http", "--port", str(port))
    with subprocess.Popen(
        [params.command, *params.args],
        env=params.env,
        cwd=params.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as process:
        try:
            for _ in range(300):
                with socket.socket() as attempt:
                    if attempt.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=20)


async def test_streamable_http_on_loopback(http_port: int):
    async with Client(f"http://127.0.0.1:{http_port}/mcp", read_timeout_seconds=60) as client:
        listed = await client.list_tools()
        assert {t.name for t in listed.tools} == TOOLS
        articles = await client.call_tool("list_articles", {})
        assert not articles.is_error and articles.structured_content["result"] == []


def test_http_refuses_an_address_beyond_loopback(analyst, store, tmp_path):
    params = server(analyst, store, tmp_path, "--http", "--host", "0.0.0.0")
    done = subprocess.run(
        [params.command, *params.args], env=params.env, cwd=params.cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "not a loopback address" in done.stderr and "--host 127.0.0.1" in done.stderr
