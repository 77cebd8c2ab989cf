"""One whole pipeline run with the real packaged model (Qwen2.5-Coder-0.5B on the embedded engine).

What a 0.5B model writes varies, so this checks the pipeline's guarantees, which hold whatever the model
answers: every step finishes and is accounted for, every stored observable is really in the article and none
of the pre-extractor's command lines is lost, the rank has a consistent band, and the rules — chosen by the
model under a schema and rendered by code, or built by the floor — are all valid.
"""

from __future__ import annotations

import pytest

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.pipeline.models import band_for
from ctistudio.pipeline.normalise import ArticleIndex
from ctistudio.pipeline.preextract import pre_extract
from ctistudio.pipeline.service import PipelineService
from ctistudio.store import Store
from ctistudio.store.rules import run_rules
from ctistudio.store.runs import run_observables

SHORT_ARTICLE = """# Loader persists with a scheduled task

After the phishing document was opened, WINWORD.EXE spawned cmd.exe, which created a scheduled task:

```
schtasks /create /tn "UpdateCheck" /tr "rundll32.exe C:\\ProgramData\\upd.dll,Start" /sc minute /mo 15 /f
```

Two hours later the loader dumped LSASS memory with comsvcs.dll:

```
rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 612 C:\\Windows\\Temp\\out.dmp full
```
"""


@pytest.mark.slow
@pytest.mark.native
async def test_short_article_end_to_end_on_the_packaged_model(store: Store, add_text, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LLM_PROVIDER", "embedded")
    # llama.cpp threads: the default (one per core). On an idle 2-core machine (CI) this run took 258 s with
    # 2 threads and 415 s with 1; on a machine busy with other jobs, 2 threads spin at every barrier and 1
    # degrades more gracefully (docs/pipeline.md, "Measured").
    settings = load_settings(env_file=None)
    article_id = add_text(SHORT_ARTICLE, title="Loader persists with a scheduled task")
    async with Gateway(settings) as gateway:
        service = PipelineService(settings, store, gateway)
        run_id = await service.start_run(article_id, force=True)  # a 0.5B model's score must not stop the test
        status = await service.wait(run_id)
        view = service.run_view(run_id)
    assert status == "succeeded", view.error
    steps = {s.name: s for s in view.steps}
    assert [s.status for s in view.steps] == ["succeeded"] * 4 + ["skipped"]
    rank = steps["rank"].output
    assert 1 <= rank["score"] <= 10 and rank["band"] == band_for(rank["score"])
    for name in ("rank", "extract"):
        assert steps[name].provider == "embedded" and steps[name].model
        assert steps[name].prompt_tokens > 0 and steps[name].completion_tokens > 0
    agents = steps["extract"].output["agents"]
    assert len(agents) == 7 and any(a["mode"] == "model" for a in agents)

    article = ArticleIndex(SHORT_ARTICLE)
    with store.session() as session:
        observables = run_observables(session, run_id)
        rules = run_rules(session, run_id)
    assert all(article.contains_any_line(o.source_evidence) for o in observables)
    commands = {o.value for o in observables if o.kind == "cmdline"}
    expected = [c.value for c in pre_extract(SHORT_ARTICLE).of("cmdline")]
    assert len(expected) == 2 and all(c in commands for c in expected), commands

    sigma = steps["sigma"].output
    assert rules, sigma["group_errors"]
    assert all(r.validation_status == "valid" for r in rules), [r.validation_errors for r in rules]
    assert sigma["valid"] == len(rules) and sigma["invalid"] == 0
    assert any("comsvcs.dll" in r.yaml or "schtasks" in r.yaml.lower() for r in rules)
