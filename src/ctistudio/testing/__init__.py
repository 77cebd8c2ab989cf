"""Test support shipped with ctistudio: real local HTTP doubles of the LLM servers and pytest fixtures.

- :mod:`ctistudio.testing.lmstudio_double` — LM Studio on 127.0.0.1 (the user guide of the LLM doubles);
- :mod:`ctistudio.testing.openai_compatible_double` — the OpenAI wire format they share;
- :mod:`ctistudio.testing.http_double` — the threaded HTTP server, faults, replies, request log;
- :mod:`ctistudio.testing.cloud_doubles` — OpenAI and Anthropic APIs on 127.0.0.1;
- :mod:`ctistudio.testing.fixtures` — the pytest plugin (``lmstudio_double``, ``openai_double`` …);
- :mod:`ctistudio.testing.queued_provider` — an in-process provider answering from a queue, for tests of the
  services above the gateway (the doubles above are for protocol tests).

Nothing here is imported by the product itself; tests and benchmarks import it.
"""
