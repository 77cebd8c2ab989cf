"""Findings 2 and 3: YAML alias bombs in a Sigma rule and in pasted front matter.

Before the fix a 481-byte rule blocked the whole server for 16.7 s and grew it by 2 GB (a concurrent
request waited as long), and a 640-byte front matter ended in a 500 ``MemoryError`` after 34 s. Now both
are refused with a 400 that names the limit, in well under a second, while the server keeps answering.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml
from tests.security.conftest import alias_bomb, run_measured, timed

from ctistudio.ingest.documents import markdown_document
from ctistudio.ingest.errors import Refused
from ctistudio.ingest.sources_config import parse_sources
from ctistudio.safe_yaml import YamlLimits, YamlRefused, load_yaml, load_yaml_documents
from ctistudio.sigma import validate_rule
from ctistudio.sigma.rule_yaml import key_lines

RULE_BOMB = "\n".join(
    [
        "title: Suspicious lol",
        "logsource: {product: windows, category: process_creation}",
        *alias_bomb(),
        "detection:",
        "  sel: {CommandLine: *a8}",
        "  condition: sel",
    ]
)
FRONT_MATTER_BOMB = "---\n" + "\n".join([*alias_bomb(), "title: *a8"]) + "\n---\n" + "The article. " * 40
MEMORY_HEADROOM_MB = 150  # the bombs took 2 GB; a refused one costs next to nothing


def test_the_bombs_are_small():
    assert len(RULE_BOMB.encode()) < 600 and len(FRONT_MATTER_BOMB.split("\n---\n")[0]) < 700


def _bomb_with_concurrent_health(server, path: str, body: dict) -> tuple[httpx.Response, float, float]:
    """POST the bomb; 50 ms later ask /health. Returns the bomb's answer, its time and /health's time."""
    with httpx.Client(timeout=60) as client:
        client.get(f"{server.url}/health")  # warm: provider health is cached, /health then does no I/O wait
        with ThreadPoolExecutor(2) as pool:
            bomb = pool.submit(timed, lambda: client.post(f"{server.url}{path}", json=body))
            health = pool.submit(timed, lambda: client.get(f"{server.url}/health"), delay=0.05)
            (answer, bomb_seconds), (health_answer, health_seconds) = bomb.result(), health.result()
    assert health_answer.status_code == 200
    return answer, bomb_seconds, health_seconds


@pytest.mark.parametrize(
    ("path", "body"),
    [("/api/queue/validate", {"yaml": RULE_BOMB}), ("/api/articles", {"text": FRONT_MATTER_BOMB})],
    ids=["sigma-rule", "front-matter"],
)
def test_alias_bomb_is_refused_fast_and_the_server_keeps_answering(server, path, body):
    before = server.peak_rss_mb()
    answer, bomb_seconds, health_seconds = _bomb_with_concurrent_health(server, path, body)
    assert answer.status_code == 400, answer.text
    assert "expands to more than" in answer.json()["detail"]
    assert bomb_seconds < 1.0, f"the bomb took {bomb_seconds:.2f} s"
    assert health_seconds < 0.5, f"/health waited {health_seconds:.2f} s"
    assert server.peak_rss_mb() - before < MEMORY_HEADROOM_MB


def test_queue_edit_from_the_cli_refuses_the_bomb_in_a_child_process(tmp_path):
    """``ctistudio queue edit N --file bomb.yml`` (15 s and 2.4 GB before): refused, exit 1, small."""
    bomb = tmp_path / "bomb.yml"
    bomb.write_text(RULE_BOMB)
    result, peak_mb = run_measured(
        [sys.executable, "-m", "ctistudio.cli.main", "queue", "edit", "1", "--file", str(bomb)]
    )
    assert result.returncode == 1 and "expands to more than" in result.stderr, result.stdout + result.stderr
    assert peak_mb < 400, f"the CLI peaked at {peak_mb:.0f} MiB"


def test_validator_reports_the_refusal_as_an_issue():
    result = validate_rule(RULE_BOMB)
    assert not result.valid
    assert [issue.code for issue in result.issues] == ["yaml_refused"]
    assert key_lines(RULE_BOMB) == {}


def test_front_matter_bomb_is_a_refusal_with_the_reason():
    with pytest.raises(Refused, match="front matter refused: it expands"):
        markdown_document(FRONT_MATTER_BOMB)


def test_sources_file_bomb_is_a_configuration_error():
    from ctistudio.errors import ConfigurationError

    text = "\n".join([*alias_bomb(), "sources: *a8"])
    with pytest.raises(ConfigurationError, match="expands to more than"):
        parse_sources(text, "sources.yaml")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 80 + "]" * 80, "nests deeper than 64 levels"),
        ("big: " + "9" * 5000, "a value could not be read"),
        ("x: " + "y" * 3000, "over the limit of 2,048 bytes"),
    ],
    ids=["deep", "huge-int", "size"],
)
def test_loader_limits_name_what_was_refused(text, reason):
    with pytest.raises(YamlRefused, match=reason) as refused:
        load_yaml(text, limits=YamlLimits(max_bytes=2048 if "bytes" in reason else 10**6))
    assert isinstance(refused.value, yaml.YAMLError)  # callers that report YAML errors report this too


def test_loader_keeps_ordinary_anchors_and_documents():
    assert load_yaml("base: &b {a: 1}\nuse: *b\n") == {"base": {"a": 1}, "use": {"a": 1}}
    assert load_yaml_documents("a: 1\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]
    with pytest.raises(yaml.YAMLError):
        load_yaml("a: [unclosed")
