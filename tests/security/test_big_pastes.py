"""Finding 6: big pastes cost minutes and stalled the server.

A 300,000-character paste took 119.5 s (110 s of server CPU), and text shaped like ``1.1.1.1…`` made two
hunt-score patterns (and one platform pattern) quadratic: 100,000 such characters took 277 s in the
scorer alone. The scoring is linear now, runs off the event loop (a worker process for the biggest
pastes) and the embedding of a big article happens after the response.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from tests.security.conftest import timed

from ctistudio.ingest.hunt_score import _DOMAIN, score_article
from ctistudio.ingest.platforms import detect_platforms

DOTTED = "# Indicator dump\n\n" + "The intrusion left the following trail behind it. " * 3 + "1." * 100_000


def test_quadratic_shapes_are_stored_quickly_while_health_answers(server):
    """200,000 characters of ``1.1.1…``: minutes before; stored in seconds now (bound generous for CI load)."""
    with httpx.Client(timeout=300) as client, ThreadPoolExecutor(2) as pool:
        paste = pool.submit(timed, lambda: client.post(f"{server.url}/api/articles", json={"text": DOTTED}))
        health = pool.submit(timed, lambda: client.get(f"{server.url}/health"), delay=0.3)
        (answer, seconds), (health_answer, health_seconds) = paste.result(), health.result()
    assert answer.status_code == 201, answer.text
    assert seconds < 30, f"the paste took {seconds:.1f} s"
    assert health_answer.status_code == 200 and health_seconds < 2.0, f"/health waited {health_seconds:.2f} s"


def test_linear_patterns_keep_their_evidence():
    """The rewritten patterns still find what they found: lineage, executables (leading dashes dropped)."""
    text = (
        "We saw winword.exe -> powershell.exe and then -x-update.exe ran; the beacon reached "
        "evil.example.com and --cdn[.]bad[.]net over 443. /Applications/Utilities/Evil.app and "
        "com.apple.evil.plist were dropped."
    )
    score = {e.signal: e.matches for e in score_article(text).evidence}
    assert score["process_lineage"] == ["winword.exe -> powershell.exe"]
    found = detect_platforms(text).evidence
    platforms = {e.signal: e.matches for evidence in found.values() for e in evidence}
    assert platforms["windows_executable"] == ["winword.exe", "powershell.exe", "x-update.exe"]
    assert platforms["macos_paths"] == ["/Applications/Utilities/Evil.app", "evil.plist"]
    assert _DOMAIN.findall(text) == ["evil.example.com", "cdn[.]bad[.]net"]
