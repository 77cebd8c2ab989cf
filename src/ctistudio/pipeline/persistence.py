"""Windows services and scheduled tasks an article names, found without a model.

Services: ``sc [\\\\host] create|config NAME binPath= …``, ``New-Service -Name NAME -BinaryPathName …``,
service-install event text (``Service Name: X`` / ``Service File Name: …``, events 7045 and 4697), service
keys ``HKLM\\SYSTEM\\CurrentControlSet\\Services\\NAME`` (with ``ImagePath`` when the article sets it), and
prose such as "installed a service named X".

Scheduled tasks: ``schtasks /create|/change … /tn NAME /tr ACTION``, ``Register-ScheduledTask -TaskName``,
task XML (``<URI>``, ``<Command>``/``<Arguments>``), ``…\\System32\\Tasks\\NAME`` files, task events
(``Task Name: \\X``, 4698/106), cron entries, and prose such as "a scheduled task named X".

Each candidate's value is the name as written; its evidence is the line that holds it, and the binary or
action goes in ``attributes`` (``image_path`` / ``command``) for the Sigma step.
"""

from __future__ import annotations

import re

from ctistudio.pipeline.candidates import Candidate, unquote

_NAME = r"(?P<name>\"[^\"\n]{1,120}\"|'[^'\n]{1,120}'|[^\s\"'`,;|]{1,120})"
_PROSE_NAME = (
    r"(?P<name>`[^`\n]{2,120}`|\"[^\"\n]{2,120}\"|'[^'\n]{2,120}'|“[^”\n]{2,120}”|‘[^’\n]{2,120}’"
    r"|\*\*[^*\n]{2,120}\*\*|[\w.$\\-]{2,80})"
)
_ARGUMENT = r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s]+)"
_EVENT_VALUE_END = r"(?=\s*(?:$|\t|\||\s{2,}|\s(?:Service|Task)(?:\s+\w+){1,2}\s*:|\sImage\s*Path))"

# -- services ------------------------------------------------------------------------------------------
_SC = re.compile(rf"\bsc(?:\.exe)?\s+(?:\\\\\S+\s+)?(?:create|config)\s+{_NAME}", re.I)
_NEW_SERVICE = re.compile(
    r"\bNew-Service\b[^\n]*?(?:-Name\s+|(?<=New-Service)\s+(?=[\"'\w]))(?P<name>\"[^\"\n]+\"|'[^'\n]+'|[\w.$-]+)", re.I
)
_BINPATH = re.compile(rf"\bbinpath=\s*{_ARGUMENT}|-BinaryPathName\s+{_ARGUMENT}", re.I)
_SERVICE_EVENT = re.compile(rf"\bService\s+Name\s*:\s*(?P<name>[^\r\n\t|]{{1,120}}?){_EVENT_VALUE_END}", re.I | re.M)
_SERVICE_FILE = re.compile(rf"\bService\s+File\s+Name\s*:\s*([^\r\n\t|]{{1,400}}?){_EVENT_VALUE_END}", re.I | re.M)
_SERVICE_KEY = re.compile(
    r"\b(?:HKLM|HKEY_LOCAL_MACHINE):?\\{1,2}SYSTEM\\{1,2}(?:CurrentControlSet|ControlSet\d{3})\\{1,2}Services"
    r"\\{1,2}(?P<name>[\w.$-]{1,80})",
    re.I,
)
_IMAGE_PATH = re.compile(r"(?:/v\s+ImagePath\s+(?:/t\s+\S+\s+)?/d\s+|ImagePath\s*[:=]\s*)" + _ARGUMENT, re.I)
_SERVICE_PROSE = re.compile(
    r"\b(?:install(?:ed|s|ing)?|creat(?:ed|es|ing)|register(?:ed|s|ing)?|add(?:ed|s)?)\s+(?:a|an|the)?\s*"
    rf"(?:new\s+|malicious\s+|rogue\s+|Windows\s+|kernel\s+)*(?:service|driver)\s+(?:named|called)\s+{_PROSE_NAME}",
    re.I,
)
# Words of prose that a loose pattern could take for a name.
_NOT_NAMES = {"the", "a", "an", "that", "which", "with", "to", "for", "and", "or", "is", "was", "named", "called"}


def _value_of(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    if not match:
        return None
    return unquote(next((g for g in match.groups() if g), ""))


def _line_at(article: str, position: int) -> str:
    start = article.rfind("\n", 0, position) + 1
    end = article.find("\n", position)
    return article[start : len(article) if end < 0 else end]


def _named(kind: str, match: re.Match[str] | None, **attributes: str | None) -> Candidate | None:
    """A candidate for the ``name`` group of ``match`` (quotes and trailing punctuation left out)."""
    if match is None:
        return None
    name = unquote(match.group("name").strip("*")).rstrip(".,:;")
    if not name or name.lower() in _NOT_NAMES or name.startswith(("-", "/", "$")):
        return None
    offset = match.start("name") + match.group("name").find(name)
    extra = tuple((k, v) for k, v in attributes.items() if v)
    return Candidate(kind, name, offset, offset + len(name), attributes=extra)


def find_services(article: str) -> list[Candidate]:
    found: list[Candidate | None] = []
    for pattern in (_SC, _NEW_SERVICE):
        for match in pattern.finditer(article):
            found.append(_named("service", match, image_path=_value_of(_BINPATH, _line_at(article, match.start()))))
    for match in _SERVICE_EVENT.finditer(article):
        window = article[match.end() : match.end() + 300]
        found.append(_named("service", match, image_path=_value_of(_SERVICE_FILE, window)))
    for match in _SERVICE_KEY.finditer(article):
        line = _line_at(article, match.start())
        found.append(_named("service", match, image_path=_value_of(_IMAGE_PATH, line)))
    found += [_named("service", m) for m in _SERVICE_PROSE.finditer(article)]
    return [c for c in found if c is not None]


# -- scheduled tasks ---------------------------------------------------------------------------------------
_SCHTASKS = re.compile(r"\bschtasks(?:\.exe)?\b[^\n]*?/(?:create|change)\b[^\n]*", re.I)
_TASK_NAME_SWITCH = re.compile(rf"/tn\s+{_NAME}", re.I)
_TASK_ACTION = re.compile(rf"/tr\s+{_ARGUMENT}", re.I)
_REGISTER_TASK = re.compile(r"\b(?:Register|Set)-ScheduledTask\b[^\n]*", re.I)
_TASK_NAME_PARAMETER = re.compile(r"-TaskName\s+(?P<name>\"[^\"\n]+\"|'[^'\n]+'|[^\s`]+)", re.I)
_POSITIONAL_TASK = re.compile(r"Register-ScheduledTask\s+(?P<name>\"[^\"\n]+\"|'[^'\n]+'|[\w.\\-]+)", re.I)
_EXECUTE = re.compile(rf"-Execute\s+{_ARGUMENT}", re.I)
_TASK_URI = re.compile(r"<URI>\s*(?P<name>[^<\n]{1,200}?)\s*</URI>", re.I)
_TASK_COMMAND = re.compile(
    r"<Command>\s*([^<\n]{1,400}?)\s*</Command>(?:\s*<Arguments>\s*([^<\n]{0,400}?)\s*</Arguments>)?", re.I
)
_TASK_FILE = re.compile(r"\\(?:System32|SysWOW64)\\Tasks\\(?P<name>[^\s\"'`<>|,;]+)", re.I)
_TASK_EVENT = re.compile(rf"\bTask\s+Name\s*:\s*(?P<name>\\?[^\r\n\t|]{{1,200}}?){_EVENT_VALUE_END}", re.I | re.M)
_TASK_PROSE = re.compile(rf"\b(?:scheduled\s+)?task\s+(?:named|called)\s+{_PROSE_NAME}", re.I)
_CRON = re.compile(
    r"^[ \t]*(?P<name>(?:@(?:reboot|hourly|daily|weekly|monthly)|(?:[\d*/,-]+[ \t]+){5})[^\s#][^\n]*)", re.M
)


def _task_commands(article: str) -> list[Candidate | None]:
    found: list[Candidate | None] = []
    for command in _SCHTASKS.finditer(article):
        name = _TASK_NAME_SWITCH.search(article, command.start(), command.end())
        found.append(_named("scheduled_task", name, command=_value_of(_TASK_ACTION, command.group(0))))
    for command in _REGISTER_TASK.finditer(article):
        name = _TASK_NAME_PARAMETER.search(article, command.start(), command.end())
        name = name or _POSITIONAL_TASK.match(article, command.start())
        found.append(_named("scheduled_task", name, command=_value_of(_EXECUTE, command.group(0))))
    return found


def _is_cron(entry: str) -> bool:
    fields = entry.split()
    return entry.startswith("@") or any(c in "".join(fields[:5]) for c in "*/")


def find_scheduled_tasks(article: str) -> list[Candidate]:
    found = _task_commands(article)
    for match in _TASK_URI.finditer(article):
        action = _TASK_COMMAND.search(article, match.start(), match.start() + 4000)
        command = " ".join(unquote(g) for g in action.groups() if g) if action else None
        found.append(_named("scheduled_task", match, command=command))
    for pattern in (_TASK_FILE, _TASK_EVENT, _TASK_PROSE):
        found += [_named("scheduled_task", m) for m in pattern.finditer(article)]
    for match in _CRON.finditer(article):
        if _is_cron(match.group("name")):
            found.append(
                Candidate("scheduled_task", match.group("name").strip(), match.start("name"), match.end("name"))
            )
    return [c for c in found if c is not None]
