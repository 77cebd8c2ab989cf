"""The pipeline's CLI: a real `ctistudio` process killed mid-run and resumed; run/show/queue commands in-process."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from analyst_script import respond
from cli_helpers import CLI, cli_env, ctistudio, in_process_cli

from ctistudio.resources import demo_article
from ctistudio.store import Store
from ctistudio.store.runs import checkpoints, get_run, list_runs
from ctistudio.testing.lmstudio_double import LMStudioDouble, Reply


def chat_kinds(double: LMStudioDouble) -> dict[str, int]:
    out: dict[str, int] = {}
    for request in double.requests_to("/v1/chat/completions"):
        system = str(request.body["messages"][0]["content"])
        kind = "rank" if "SIGMA HUNTABILITY" in system else "sigma" if "Sigma rules" in system else "extract"
        out[kind] = out.get(kind, 0) + 1
    return out


def test_run_killed_between_steps_resumes_from_the_last_finished_step(
    lmstudio_double: LMStudioDouble, store: Store, demo_article_id: int, tmp_path: Path, monkeypatch
):
    slow = {"sigma": True}

    def analyst(call):
        answer = respond(call)
        if slow["sigma"] and "writing Sigma rules" in call.system:
            return Reply(content=answer or "", latency=3.0)
        return answer

    lmstudio_double.responder = analyst
    env = cli_env(lmstudio_double, store)
    log = tmp_path / "killed-run.log"
    with (
        log.open("w") as output,
        subprocess.Popen(
            [*CLI, "run", "--article", str(demo_article_id)], env=env, cwd=tmp_path, stdout=output, stderr=output
        ) as process,
    ):
        deadline = time.monotonic() + 60
        state: dict[str, str] = {}
        while time.monotonic() < deadline:
            with store.session() as session:
                runs = list_runs(session)
                if runs:
                    state = {name: cp.status for name, cp in checkpoints(session, runs[0].id).items()}
            if state.get("extract") == "succeeded" and state.get("sigma") == "running":
                break
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    with store.session() as session:
        run = list_runs(session)[0]
        assert run.status == "running" and run.current_step == "sigma"  # the process died: nobody closed it
        assert {n: cp.status for n, cp in checkpoints(session, run.id).items()} == {
            "prepare": "succeeded",
            "rank": "succeeded",
            "extract": "succeeded",
            "sigma": "running",
        }
        run_id = run.id
    before = chat_kinds(lmstudio_double)
    assert before["rank"] == 1 and before["extract"] == 8  # 7 agents + 1 repair of the malformed JSON

    slow["sigma"] = False
    resumed = ctistudio("runs", "resume", str(run_id), "--json", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    view = json.loads(resumed.stdout)
    assert view["status"] == "succeeded"
    after = chat_kinds(lmstudio_double)
    assert (after["rank"], after["extract"]) == (1, 8)  # nothing before the sigma step ran again
    assert after["sigma"] > before.get("sigma", 0)
    titles = {r["title"] for r in view["rules"]}
    assert "Lantern Loader Export Called Through Rundll32" in titles
    with store.session() as session:
        assert get_run(session, run_id).finished_at is not None
        assert checkpoints(session, run_id)["sigma"].attempts == 2

    # re-running a finished step replaces its outputs: same rules (same ids), nothing duplicated
    again = in_process_cli(lmstudio_double, store, monkeypatch)(
        "runs", "resume", str(run_id), "--from", "sigma", "--json"
    )
    assert again.exit_code == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert sorted(r["rule_uuid"] for r in rerun["rules"]) == sorted(r["rule_uuid"] for r in view["rules"])


def test_cli_run_show_and_queue_actions(
    lmstudio_double: LMStudioDouble, store: Store, demo_article_id: int, tmp_path: Path, monkeypatch, sigmahq_index
):
    lmstudio_double.responder = respond
    cli = in_process_cli(lmstudio_double, store, monkeypatch)
    done = cli("run", "--article", str(demo_article_id))
    assert done.exit_code == 0, done.stderr
    assert "rank     huntability 8/10 (high)" in done.stderr
    assert "Lantern Loader Run Key Persistence" in done.stdout

    listed = json.loads(cli("runs", "list", "--json").stdout)
    assert listed[0]["status"] == "succeeded" and listed[0]["score"] == 8
    shown = json.loads(cli("runs", "show", str(listed[0]["id"]), "--json").stdout)
    assert [s["name"] for s in shown["steps"]] == ["prepare", "rank", "extract", "sigma", "novelty"]
    assert shown["config_snapshot"]["llm_provider"] == "lmstudio"

    assert "duplicate" in done.stdout and "Wdigest Enable UseLogonCredential (1.00)" in done.stdout
    queue = json.loads(cli("queue", "list", "--json").stdout)
    by_title = {r["title"]: r["id"] for r in queue}
    assert "WDigest UseLogonCredential Turned On" not in by_title  # duplicates wait for nobody
    [duplicate] = json.loads(cli("queue", "list", "--verdict", "duplicate", "--json").stdout)
    assert duplicate["similar"][0]["path"].endswith("registry_set_wdigest_enable_uselogoncredential.yml")
    rule_id = by_title["OneNote Spawning Mshta"]
    assert cli("queue", "approve", str(rule_id)).exit_code == 0
    rejected = by_title["Lantern C2 Domain Resolved"]
    assert cli("queue", "reject", str(rejected), "--note", "IOC only").exit_code == 0
    remaining = {r["id"] for r in json.loads(cli("queue", "list", "--json").stdout)}
    assert rule_id not in remaining and rejected not in remaining

    splunk = cli("queue", "convert", str(rule_id), "--to", "splunk")
    assert splunk.exit_code == 0 and "mshta.exe" in splunk.stdout and "onenote.exe" in splunk.stdout.lower()
    elastic = cli("queue", "convert", str(rule_id), "--to", "elastic", "--json")
    assert json.loads(elastic.stdout)["queries"]

    exported = cli("queue", "export", str(tmp_path / "rules.zip"))
    assert exported.exit_code == 0, exported.stderr
    with zipfile.ZipFile(tmp_path / "rules.zip") as archive:
        [name] = archive.namelist()
        assert name.startswith("onenote_spawning_mshta_") and "ParentImage|endswith" in archive.read(name).decode()
    folder = cli("queue", "export", str(tmp_path / "out"))
    assert folder.exit_code == 0 and len(list((tmp_path / "out").glob("*.yml"))) == 1

    # an edit is validated again: a broken edit leaves the rule invalid (and not approvable)
    broken = tmp_path / "broken.yml"
    broken.write_text("title: x\ndetection:\n  selection:\n    Image: a\n  condition: nope\n")
    edited = cli("queue", "edit", str(rule_id), "--file", str(broken))
    assert edited.exit_code == 1 and "missing required field" in edited.stdout
    refused = cli("queue", "approve", str(rule_id))
    assert refused.exit_code == 1 and "cannot be approved" in refused.stderr

    missing = cli("runs", "show", "999")
    assert missing.exit_code == 1 and "no pipeline run with id 999" in missing.stderr


@pytest.mark.parametrize("command", [["run"], ["runs", "resume", "1", "--from", "nowhere"]])
def test_cli_refuses_bad_input_with_a_fix(command, lmstudio_double, store, monkeypatch):
    result = in_process_cli(lmstudio_double, store, monkeypatch)(*command)
    assert result.exit_code == 1 and "fix:" in result.stderr


def test_run_file_stores_the_article_once_then_runs_it(lmstudio_double, store, tmp_path, monkeypatch):
    lmstudio_double.responder = respond
    cli = in_process_cli(lmstudio_double, store, monkeypatch)
    report = tmp_path / "paper-lantern.md"
    report.write_text(demo_article(), encoding="utf-8")
    first = cli("run", "--file", str(report), "--json")
    assert first.exit_code == 0, first.stderr
    view = json.loads(first.stdout)
    assert view["status"] == "succeeded" and view["article_title"].startswith("Operation Paper Lantern")
    prepare = view["steps"][0]["output"]
    assert "windows" in prepare["platforms"] and prepare["hunt_score"] > 0  # ingestion's deterministic scores
    second = json.loads(cli("run", "--file", str(report), "--json").stdout)
    assert second["article_id"] == view["article_id"] and second["id"] != view["id"]
