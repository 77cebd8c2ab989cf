"""The agentic pipeline: junk filter → rank → extract sub-agents → Sigma generation ⇄ repair → novelty → review."""
