"""Deterministic platform detection (Windows, Linux, macOS, cloud) with the evidence for each.

A platform counts as detected when its signals add up to :data:`DETECTION_THRESHOLD` points — one stray
word ("Windows", "Linux") is not enough, a command line or a handful of distinct artefacts is. The
pipeline uses the result to pick Sigma log sources; the UI shows the matched words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctistudio.ingest.signals import Evidence, Signal, evaluate, signal

PLATFORMS = ("windows", "linux", "macos", "cloud")
DETECTION_THRESHOLD = 4.0

PLATFORM_SIGNALS: dict[str, tuple[Signal, ...]] = {
    "windows": (
        signal(
            "windows_executable",
            "windows",
            # from the start of a name only (see hunt_score._DOMAIN: retrying inside a run is quadratic)
            r"(?<![\w-])-*+(?P<m>\b[\w-]++\.(?:exe|dll|ps1|bat|cmd|vbs|hta|lnk|msi|scr|sys)\b)",
            1,
            4,
        ),
        signal(
            "windows_path", "windows", r"\b[A-Za-z]:\\[^\s\"'<>|]*|%(?:APPDATA|LOCALAPPDATA|TEMP|PROGRAMDATA)%", 1, 3
        ),
        signal("registry", "windows", r"\b(?:HKLM|HKCU|HKEY_LOCAL_MACHINE|HKEY_CURRENT_USER)\b", 2, 4),
        signal("powershell", "windows", r"\bpowershell(?:\.exe)?\b|\bpwsh\b|\bcmd\.exe\b", 2, 4),
        signal(
            "windows_internals",
            "windows",
            r"\bLSASS\b|\bSysmon\b|\bETW\b|\bWMI\b|\bActive Directory\b|\bGroup Policy\b|\bNTLM\b|\bKerberos\b|"
            r"\bDefender\b|\bevent\s*id\s*4\d{3}\b|\bSAM hive\b|\bDCSync\b|\bUAC\b",
            1,
            4,
        ),
        signal("windows_name", "windows", r"\bWindows(?:\s+(?:Server|10|11))?\b", 1, 1),
    ),
    "linux": (
        signal(
            "linux_path",
            "linux",
            r"(?<![\w.])/(?:etc|tmp|var|usr|bin|sbin|proc|dev/shm|root|home|lib|opt)/[\w./-]*",
            1,
            4,
        ),
        signal(
            "linux_tooling",
            "linux",
            r"\b(?:bash|/bin/sh|crontab|systemd|systemctl|chmod|chown|sudo|apt-get|yum|iptables|auditd|journalctl|"
            r"ld\.so|LD_PRELOAD|ELF)\b",
            1,
            4,
        ),
        signal("linux_name", "linux", r"\b(?:Linux|Ubuntu|Debian|CentOS|RHEL|Red Hat|ESXi|Alpine)\b", 1, 2),
    ),
    "macos": (
        signal(
            "macos_paths",
            "macos",
            r"~/Library/\S+|/Library/(?:LaunchAgents|LaunchDaemons|Application Support)\b|"
            r"/Applications/(?:[^\s/]+/)?[^\s/]+\.app\b|(?<![\w-])-*+(?P<m>\b[\w-]++\.(?:plist|dmg|pkg)\b)",
            1,
            4,
        ),
        signal(
            "macos_tooling",
            "macos",
            r"\b(?:launchctl|launchd|osascript|AppleScript|Gatekeeper|XProtect|TCC|Mach-O|codesign|xattr|"
            r"notarization|Keychain|com\.apple\.quarantine)\b",
            1,
            4,
        ),
        signal("macos_name", "macos", r"\b(?:macOS|Mac OS X|OS X|MacBook|Apple silicon)\b", 1, 2),
    ),
    "cloud": (
        signal(
            "aws",
            "cloud",
            r"\b(?:AWS|CloudTrail|GuardDuty|S3 buckets?|EC2|IAM (?:role|user|polic(?:y|ies))|AssumeRole|"
            r"Secrets Manager|Lambda function)\b",
            1,
            4,
        ),
        signal(
            "azure_m365",
            "cloud",
            r"\b(?:Azure|Entra ID|Azure AD|Microsoft 365|M365|Office 365|Exchange Online|SharePoint Online|"
            r"OAuth (?:app|application|token)s?|service principal|Unified Audit Log)\b",
            1,
            4,
        ),
        signal("gcp", "cloud", r"\b(?:GCP|Google Cloud|gcloud|BigQuery|Google Workspace)\b", 1, 4),
        signal(
            "containers_identity",
            "cloud",
            r"\b(?:Kubernetes|kubectl|container registry|Okta|SAML|identity provider|SaaS)\b",
            1,
            3,
        ),
    ),
}


@dataclass
class PlatformDetection:
    platforms: list[str]  # detected ones, strongest first
    scores: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)

    def evidence_json(self) -> dict[str, list[dict[str, object]]]:
        """Evidence of every platform that matched anything (detected or not), for display."""
        return {name: [e.to_dict() for e in items] for name, items in self.evidence.items() if items}


def detect_platforms(text: str, title: str = "") -> PlatformDetection:
    full = f"{title}\n\n{text}" if title else text
    scores: dict[str, float] = {}
    evidence: dict[str, list[Evidence]] = {}
    for platform, signals in PLATFORM_SIGNALS.items():
        found = [item for sig in signals if (item := evaluate(sig, full)) is not None]
        evidence[platform] = found
        scores[platform] = round(sum(item.points for item in found), 2)
    detected = sorted((p for p in PLATFORMS if scores[p] >= DETECTION_THRESHOLD), key=lambda p: -scores[p])
    return PlatformDetection(platforms=detected, scores=scores, evidence=evidence)
