"""The deterministic keyword hunt score (0–100): how much an article gives a detection engineer to hunt with.

Perfect discriminators — things that only appear when an article shows real attacker behaviour — weigh
most: living-off-the-land binaries *with their arguments*, encoded PowerShell, registry paths, process
lineage, Linux/macOS/cloud command syntax, detection queries. Supporting signals (Windows paths, event IDs,
ATT&CK IDs, code blocks) add a little. Negative signals subtract: marketing language, IOC-only lists and
very short texts. Every point comes with the matched words (:class:`~ctistudio.ingest.signals.Evidence`).

The LLM rank of the pipeline (1–10) is a separate, later judgement; this score is free, instant and
explainable, so it can sort and filter thousands of articles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ctistudio.ingest.signals import Evidence, Signal, evaluate, signal

_LOLBINS = (
    r"certutil|bitsadmin|mshta|rundll32|regsvr32|wmic|msiexec|installutil|regasm|regsvcs|cmstp|msbuild|forfiles"
    r"|odbcconf|mavinject|esentutl|extrac32|hh|wscript|cscript|schtasks|sc|reg|netsh|vssadmin|wbadmin|bcdedit"
    r"|wevtutil|nltest|dsquery|adfind|ntdsutil|procdump|psexec|powershell|pwsh|cmd|net1?|whoami|attrib|icacls"
    r"|takeown|curl|rclone|mimikatz|sekurlsa|bcp|sqlcmd|diskshadow|finger|ftp|tar|7z|7za|winrar|rar|nslookup"
)
_ARGUMENT = r"""(?:[ \t]+(?:/[A-Za-z?][\w:.-]*|--?[A-Za-z][\w:.-]*|"[^"\n]{1,200}"|'[^'\n]{1,200}'))"""

POSITIVE_SIGNALS: tuple[Signal, ...] = (
    signal(
        "lolbin_with_arguments",
        "perfect",
        rf"\b(?:{_LOLBINS})(?:\.exe)?[\"']?{_ARGUMENT}(?:[ \t]+[^\s`]{{1,120}}){{0,6}}",
        10,
        40,
        "a Windows built-in or common attacker tool run with its command-line arguments",
    ),
    signal(
        "powershell_tradecraft",
        "perfect",
        r"-(?:e|ec|enc|encodedcommand)\s+[A-Za-z0-9+/=]{16,}|\b(?:IEX|Invoke-Expression|DownloadString|"
        r"DownloadFile|FromBase64String|Invoke-WebRequest|Net\.WebClient|Start-BitsTransfer|Add-MpPreference|"
        r"Set-MpPreference)\b|-(?:nop|noprofile)\b|-w(?:indowstyle)?\s+hidden\b|-ep\s+bypass|-executionpolicy\s+bypass",
        6,
        24,
        "PowerShell options and cmdlets attackers use (encoded commands, download cradles, Defender tampering)",
    ),
    signal(
        "registry_path",
        "perfect",
        r"\b(?:HKLM|HKCU|HKU|HKCR|HKEY_LOCAL_MACHINE|HKEY_CURRENT_USER|HKEY_USERS|HKEY_CLASSES_ROOT)"
        r"(?:\\|:\\)[\w\\ .{}\-$]+",
        8,
        24,
        "registry keys (persistence, configuration changes)",
    ),
    signal(
        "process_lineage",
        "perfect",
        # a match starts only where a run of name characters starts (leading dots/dashes skipped, the
        # evidence is group m): retrying inside a long run like 1.1.1.1… would take quadratic time
        r"(?<![\w.-])[.-]*+(?P<m>\b[\w.-]+\.exe\b[\"'`]?\s*(?:→|->|=>|>|spawn(?:s|ed|ing)|launch(?:es|ed|ing)|"
        r"start(?:s|ed)|execut(?:es|ed|ing)|(?:was\s+)?(?:the\s+)?parent\s+of)\s*[\"'`]?(?:a\s+|an\s+|the\s+)?"
        r"[\w.-]+\.exe\b)",
        8,
        24,
        "parent → child process relationships",
    ),
    signal(
        "linux_command",
        "perfect",
        r"\b(?:curl|wget)\s+[^\n|]{1,200}\|\s*(?:ba|z|da)?sh\b|\bchmod\s+(?:\+x|[0-7]{3,4})\s+\S+|"
        r"\bcrontab\s+-[elr]\b|/etc/(?:cron[\w./]*|systemd/[\w./]+|ld\.so\.preload|rc\.local|init\.d/\S+)|"
        r"\bnohup\s+\S+|\bbase64\s+(?:-d|--decode)\b|\bsystemctl\s+(?:enable|start|daemon-reload)\b|"
        r"\biptables\s+-[ADIF]\b|\bsetenforce\s+0\b|/dev/shm/\S+|\bhistory\s+-c\b|\bssh-keygen\s+-",
        8,
        24,
        "Linux command lines and persistence locations",
    ),
    signal(
        "macos_command",
        "perfect",
        r"\blaunchctl\s+(?:load|bootstrap|submit|kickstart)\b|~/Library/LaunchAgents/\S*|/Library/Launch(?:Agents|Daemons)/\S*|"
        r"\bosascript\s+-e\b|\bxattr\s+-(?:d|c|r)\b[^\n]*|\bsecurity\s+(?:find-generic-password|dump-keychain)\b|"
        r"\bdscl\s+\.\s+-\w+|\bspctl\s+--master-disable\b|\bcsrutil\s+disable\b",
        8,
        24,
        "macOS command lines and persistence locations",
    ),
    signal(
        "cloud_activity",
        "perfect",
        r"\b(?:CreateAccessKey|AssumeRole(?:WithSAML|WithWebIdentity)?|GetSecretValue|ConsoleLogin|PutBucketPolicy|"
        r"PutBucketAcl|AttachUserPolicy|AttachRolePolicy|CreateLoginProfile|UpdateLoginProfile|StopLogging|DeleteTrail|"
        r"GetFederationToken|CreateUser|PutUserPolicy|RunInstances|ListBuckets|GetCallerIdentity|"
        r"Add member to role|Consent to application|Add service principal credentials)\b|"
        r"\baws\s+(?:iam|s3|s3api|sts|ec2|lambda|secretsmanager|ssm)\s+[\w-]+|\baz\s+(?:ad|role|vm|keyvault|login)\s+\w+|"
        r"\bgcloud\s+[\w-]+\s+[\w-]+|\bkubectl\s+(?:exec|apply|create|run|cp)\b",
        8,
        24,
        "cloud API calls, audit-log event names and cloud CLI commands",
    ),
    signal(
        "detection_content",
        "perfect",
        # [ \t]* at line starts, not \s*: \s* crossed blank lines and retried from each (quadratic)
        r"^[ \t]*(?:logsource|detection)[ \t]*:[ \t]*$|\b(?:DeviceProcessEvents|DeviceRegistryEvents|"
        r"DeviceNetworkEvents|SecurityEvent|SigninLogs|AuditLogs)\b\s*\|\s*where\b|"
        r"^[ \t]*index[ \t]*=[ \t]*\S+.*\|\s*(?:stats|table|search)\b|"
        r"\b(?:process|file|registry|network)\s+where\s+\w+|"
        r"^[ \t]*rule[ \t]+\w+[ \t]*(?::[ \t]*[\w ]+)?\s*\{|^[ \t]*condition[ \t]*:[ \t]*\S+",
        10,
        20,
        "detection content in the article: Sigma, KQL, SPL, EQL or YARA",
    ),
    signal(
        "windows_path",
        "supporting",
        r"\b[A-Za-z]:\\(?:[^\\\s\"'`<>|*?]+\\)*[^\\\s\"'`<>|*?]+|%(?:APPDATA|LOCALAPPDATA|TEMP|TMP|PROGRAMDATA|"
        r"USERPROFILE|PUBLIC|WINDIR|SYSTEMROOT)%\\[^\s\"'`<>|]+",
        3,
        12,
        "Windows file paths (where files are dropped or run from)",
    ),
    signal(
        "event_id",
        "supporting",
        r"\b(?:event\s*id|eventid|eid|event\s*code|eventcode)\s*[:=#]?\s*\d{1,5}\b|\bsysmon\s+(?:event\s+)?(?:id\s*)?\d{1,2}\b",
        5,
        15,
        "Windows/Sysmon event IDs to hunt in",
    ),
    signal("attack_technique", "supporting", r"\bT1\d{3}(?:\.\d{3})?\b", 2, 10, "MITRE ATT&CK technique IDs"),
    signal(
        "code_block", "supporting", r"^```[^\n]*\n(?s:.*?)^```", 3, 9, "code blocks (command lines, scripts, queries)"
    ),
    signal(
        "scheduled_task_or_service",
        "supporting",
        r"\bschtasks(?:\.exe)?\s+/create\b|\bsc(?:\.exe)?\s+(?:create|config)\b|\bNew-Service\b|\bRegister-ScheduledTask\b|"
        r"\bNew-ScheduledTask\w*\b",
        4,
        8,
        "persistence through scheduled tasks or services",
    ),
)

NEGATIVE_SIGNALS: tuple[Signal, ...] = (
    signal(
        "marketing",
        "negative",
        r"\b(?:request|book|schedule)\s+a\s+(?:demo|call|consultation)\b|\bfree\s+trial\b|\bcontact\s+(?:our\s+)?sales\b|"
        r"\bour\s+(?:platform|solution|product)s?\b|\baward[- ]winning\b|\bindustry[- ]leading\b|"
        r"\bbest[- ]in[- ]class\b|"
        r"\bregister\s+(?:now|today|here)\b|\bjoin\s+(?:us|our)\s+(?:webinar|event)\b|\bwebinar\b|\bpress\s+release\b|"
        r"\b(?:announces|announced)\s+(?:a\s+)?(?:partnership|acquisition|general\s+availability)\b|"
        r"\bsign\s+up\s+(?:now|today)\b|"
        r"\bdownload\s+(?:the|our)\s+(?:report|e-?book|whitepaper)\b|\bmagic\s+quadrant\b|\bnamed\s+a\s+leader\b",
        -6,
        -30,
        "marketing and sales language",
    ),
)

_HASH = re.compile(r"\b(?:[a-f0-9]{64}|[a-f0-9]{40}|[a-f0-9]{32})\b", re.IGNORECASE)
_IP = re.compile(r"\b(?:\d{1,3}(?:\.|\[\.\])){3}\d{1,3}\b")
# Starts only where a run of labels starts (not after a label character, "x." or "x[.]"): retrying at every
# label of a long run like 1.1.1.1… took quadratic time. Leading dashes are skipped.
_DOMAIN = re.compile(
    r"(?<![\w-])(?<![\w-]\.)(?<![\w-]\[\.\])-*+(\b[\w-]++(?:\.|\[\.\])(?:[\w-]++(?:\.|\[\.\]))*"
    r"(?:com|net|org|ru|cn|io|xyz|top|info|biz|dev)\b)"
)
_WORD = re.compile(r"\S+")

SHORT_TEXT_WORDS = 150
IOC_LIST_MIN = 20
IOC_LIST_RATIO = 0.15


@dataclass
class HuntScore:
    score: int  # 0–100
    evidence: list[Evidence] = field(default_factory=list)

    def evidence_json(self) -> list[dict[str, object]]:
        return [item.to_dict() for item in self.evidence]


def _structural_negatives(text: str, perfect_points: float) -> list[Evidence]:
    out: list[Evidence] = []
    words = len(_WORD.findall(text))
    if words < SHORT_TEXT_WORDS:
        out.append(
            Evidence("short_text", "negative", -15.0, words, [f"{words} words"], "too short to describe behaviour")
        )
    iocs = _HASH.findall(text) + _IP.findall(text) + _DOMAIN.findall(text)
    if len(iocs) >= IOC_LIST_MIN and len(iocs) / max(words, 1) >= IOC_LIST_RATIO and perfect_points < 16:
        shown = list(dict.fromkeys(iocs))[:5]
        out.append(
            Evidence(
                "ioc_only",
                "negative",
                -20.0,
                len(iocs),
                shown,
                f"mostly a list of indicators ({len(iocs)} of {words} words) with little behaviour to hunt",
            )
        )
    return out


def score_article(text: str, title: str = "") -> HuntScore:
    """Score ``title`` + ``text`` from 0 to 100 with the evidence for every point."""
    full = f"{title}\n\n{text}" if title else text
    evidence = [found for sig in POSITIVE_SIGNALS + NEGATIVE_SIGNALS if (found := evaluate(sig, full)) is not None]
    perfect = sum(e.points for e in evidence if e.category == "perfect")
    evidence.extend(_structural_negatives(full, perfect))
    total = sum(e.points for e in evidence)
    evidence.sort(key=lambda e: (-abs(e.points), e.signal))
    return HuntScore(score=round(max(0.0, min(100.0, total))), evidence=evidence)
