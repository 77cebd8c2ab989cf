"""Per-step accounting of LLM calls: which provider and model answered, tokens, and time."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ctistudio.llm import ChatResult


class StepUsage(BaseModel):
    """What a step spent. Stored with the step's checkpoint; summed for the run."""

    calls: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    llm_seconds: float = 0.0  # summed over calls (calls overlap when they run in parallel)
    models: list[str] = Field(default_factory=list)  # provider/model, in order of first use

    def add(self, result: ChatResult) -> None:
        self.calls += result.attempts
        self.prompt_tokens += result.usage.prompt_tokens or 0
        self.completion_tokens += result.usage.completion_tokens or 0
        self.cached_tokens += result.usage.cached_tokens or 0
        self.llm_seconds += result.timings.total or 0.0
        name = f"{result.provider}/{result.model}"
        if name not in self.models:
            self.models.append(name)

    def add_failure(self) -> None:
        self.failed_calls += 1

    def merge(self, other: StepUsage) -> None:
        self.calls += other.calls
        self.failed_calls += other.failed_calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_tokens += other.cached_tokens
        self.llm_seconds += other.llm_seconds
        for name in other.models:
            if name not in self.models:
                self.models.append(name)
