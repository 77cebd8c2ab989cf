"""One whole pipeline run with the real packaged model (Qwen2.5-Coder-0.5B on the embedded engine).

What a 0.5B model writes varies, so this checks the pipeline's guarantees rather than the model's answers:
every step finishes and is accounted for, every stored observable is really in the article, the rank has a
consistent band, and every rule is stored either valid or with its validator errors.
"""

from __future__ import annotations

import pytest

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.pipeline.models import band_for
from ctistudio.pipeline.normalise import ArticleIndex
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
    assert observables, "neither the model nor the pre-extractor found anything"
    assert all(article.contains_any_line(o.source_evidence) for o in observables)
    for rule in rules:
        assert rule.validation_status in ("valid", "invalid")
        assert rule.validation_status == "valid" or rule.validation_errors
        assert rule.repair_rounds <= 3
    sigma = steps["sigma"].output
    assert sigma["valid"] + sigma["invalid"] == len(rules)
    if not rules:
        assert sigma["group_errors"], "no rule and no reason"
