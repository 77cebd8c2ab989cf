"""The values a generated Sigma rule may match, derived by code from a group's observables.

A model never types a detection value: it picks one from the lists made here (an enum per field that the
server enforces while decoding), and the deterministic floor builds its rules from the same lists. Each
value is taken from an observable — a command line's tool and its distinctive arguments, a registry path
after its hive, a service's name and binary, a domain — so every rule is grounded in the article.

What "distinctive" means (the ``weight``): tokens that name what an attacker did (``MiniDump``, ``-enc``,
``/create``, a dropped DLL) weigh more than generic switches (``/all``), and victim-specific parts (process
ids, user folders, host addresses) are left out, so a rule matches the behaviour rather than one victim.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ctistudio.pipeline.models import Observable
from ctistudio.sigma.taxonomy import CONTAINS, CONTAINS_ALL, ENDSWITH, REGEX, LogSourceSpec

MAX_VALUES_PER_OBSERVABLE = 10
MAX_VALUE_CHARS = 200

_TOKEN = re.compile(r'"[^"]*"|\'[^\']*\'|\S+')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NUMBER = re.compile(r"^[\d.,:x]+$|^0x[0-9a-f]+$", re.I)
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
_BLOB = re.compile(r"^[A-Za-z0-9+/=]{40,}$")
_FILE = re.compile(
    r"[\w$.-]+\.(?:exe|dll|ps1|psm1|bat|cmd|vbs|vbe|js|jse|hta|msi|lnk|scr|cpl|sys|dmp|zip|rar|7z|iso"
    r"|conf|cfg|dat|bin|sh|py|so|plist)$",
    re.I,
)
_USER_DIR = re.compile(r"^(?:[a-z]:)?\\users\\[^\\]+(\\.*)$|^/(?:home|Users)/[^/]+(/.*)$", re.I)
_HIVE = re.compile(r"^(?:HKLM|HKCU|HKCR|HKU|HKCC|HKEY_[A-Z_]+)(?::)?(\\.*)$", re.I)
# Words that name attacker tradecraft when they appear as arguments (case-insensitive, whole token).
_TRADECRAFT = {
    w.lower()
    for w in [
        "MiniDump",
        "-enc",
        "-e",
        "-ec",
        "-encodedcommand",
        "-nop",
        "-noprofile",
        "-w",
        "-windowstyle",
        "hidden",
        "bypass",
        "-ep",
        "-exec",
        "-executionpolicy",
        "iex",
        "downloadstring",
        "downloadfile",
        "invoke-expression",
        "invoke-webrequest",
        "net.webclient",
        "frombase64string",
        "-urlcache",
        "-split",
        "-decode",
        "/create",
        "/tr",
        "/sc",
        "/ru",
        "system",
        "create",
        "delete",
        "shadows",
        "/domain_trusts",
        "/all_trusts",
        "/dclist",
        "--config",
        "--transfers",
        "--no-check-certificate",
        "call",
        "process",
        "lsass",
        "comsvcs.dll",
        "sekurlsa::logonpasswords",
        "privilege::debug",
        "/node:",
        "useLogonCredential",
        "/quiet",
        "/i",
        "binpath=",
        "start=",
        "add-mppreference",
        "set-mppreference",
        "-exclusionpath",
        "disablerealtimemonitoring",
        "resetbase",
        "/y",
        "vssadmin",
        "wbadmin",
        "bcdedit",
        "recoveryenabled",
        "bootstatuspolicy",
        "ignoreallfailures",
    ]
}
# Generic arguments that say nothing about the behaviour on their own.
_GENERIC = {"/c", "/k", "/q", "/s", "/f", "/v", "/t", "/d", "/y", "-c", "-f", "-o", "/all", "full", "true"}

_RUNDLL32 = re.compile(r"rundll32(?:\.exe)?", re.I)
# Commands of cmd.exe itself: `dir /s /b …` runs inside cmd.exe, so no process of that name ever starts.
_CMD_BUILTINS = {
    *("assoc", "call", "cd", "chdir", "cls", "copy", "del", "dir", "echo", "erase", "for", "ftype", "md"),
    *("mkdir", "mklink", "move", "path", "popd", "pushd", "rd", "ren", "rename", "rmdir", "set", "start"),
    *("type", "ver", "vol"),
}


# Where a value sits in what the event's field holds, and so which modifiers can ever match it: a process's
# Image is a full path, so ``\mshta.exe`` only ends it; a command line does not start with one of its
# arguments. The 0.5B model wrote ``CommandLine|startswith: hidden`` (a rule that never fires) when any
# modifier of the field went with any of its values.
Position = Literal["whole", "end", "inside"]
_ANYWHERE = {CONTAINS, CONTAINS_ALL, REGEX}
_FITTING: dict[str, set[str]] = {"end": _ANYWHERE | {ENDSWITH}, "inside": _ANYWHERE}


@dataclass(frozen=True)
class ValueChoice:
    """One value a rule may match on ``field``, taken from observable number ``observable`` of the group."""

    field: str
    value: str | int
    weight: float
    observable: int
    position: Position = "whole"  # the whole field value (any modifier fits), or where in it

    def fits(self, modifier: str) -> bool:
        """Whether ``field|modifier: value`` can match an event this value comes from."""
        return self.position == "whole" or modifier in _FITTING[self.position]


def _ending(text: str, value: str) -> Position:
    """``end`` when ``text`` (a command, a binary path) ends with ``value``, else ``inside``."""
    return "end" if text.rstrip("\"' ").lower().endswith(value.lower()) else "inside"


def clean(text: str) -> str:
    """A value as a rule can hold it: no control characters, single spaces, at most MAX_VALUE_CHARS."""
    return " ".join(_CONTROL.sub(" ", text).split())[:MAX_VALUE_CHARS]


def _unquote(token: str) -> str:
    token = token.strip()
    while len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'`":
        token = token[1:-1].strip()
    return token.strip("\"'`").rstrip(",;")


def split_command(command: str) -> list[str]:
    """A command line's tokens, quoted parts kept whole and unquoted."""
    return [t for t in (_unquote(m.group(0)) for m in _TOKEN.finditer(command)) if t]


def _basename(path: str) -> str:
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1]


def image_value(tool: str, product: str) -> str | None:
    """``"C:\\Windows\\System32\\mshta.exe"`` → ``\\mshta.exe``; ``rundll32`` → ``\\rundll32.exe`` (Windows);
    ``/usr/bin/curl`` → ``/curl``. ``None`` for something that is not a program name."""
    name = _basename(tool)
    if not re.fullmatch(r"[\w$.+-]{2,64}", name):
        return None
    if product == "windows":
        if name.lower() in _CMD_BUILTINS:
            return "\\cmd.exe"  # the process that runs a built-in command
        if "." not in name:
            name += ".exe"
        elif not re.search(r"\.(?:exe|com|scr)$", name, re.I):
            return None  # a script or document is not the process image
        return "\\" + name
    return "/" + name


def _argument_values(token: str) -> list[tuple[str, float]]:
    """Matchable parts of one argument with their weight (see the module docstring)."""
    lower = token.lower()
    if lower in _GENERIC or len(token) < 3 or _NUMBER.match(token):
        return []
    if lower in _TRADECRAFT:
        return [(token, 3.0)]
    if _BLOB.match(token):
        return [(token[:60], 1.0)]
    key, sep, rest = token.partition(":") if token.startswith(("/", "-")) else ("", "", "")
    if sep and rest and (_IPV4.search(rest) or _NUMBER.match(rest)):
        return [(key + sep, 2.5)]  # "/node:10.20.30.41" → "/node:" (the switch, not the victim)
    out: list[tuple[str, float]] = []
    parts = token.split(",")
    for number, part in enumerate(parts):
        part = part.strip()
        if len(part) < 3 or _NUMBER.match(part):
            continue
        if (
            number
            and re.search(r"\.(?:dll|cpl|ocx)$", parts[number - 1].strip(), re.I)
            and re.fullmatch(r"#?\w+", part)
        ):
            out.append((part, 2.5))  # "x.dll,DllRegister": the export rundll32 calls names the payload's entry
            continue
        if "\\" in part or "/" in part[1:]:
            user = _USER_DIR.match(part)
            tail = next((g for g in user.groups() if g), "") if user else part
            name = _basename(part)
            if _FILE.search(name):
                out.append((name, 2.5 if not name.lower().endswith((".dmp", ".conf", ".cfg")) else 1.5))
            if tail and tail.lower() != ("\\" + name).lower() and len(tail) <= 120 and not _IPV4.search(tail):
                out.append((tail, 1.5))
        elif part.lower() in _TRADECRAFT:
            out.append((part, 3.0))
        elif _FILE.search(part):
            out.append((part, 2.5))
        elif part.startswith(("/", "-")):
            out.append((part, 1.5 if len(part) > 4 else 1.0))
        elif re.fullmatch(r"[A-Za-z][\w.-]{2,}", part) and not _IPV4.search(part):
            out.append((part, 1.0))
    return out


def command_values(command: str, product: str, index: int) -> list[ValueChoice]:
    """Image and CommandLine choices of one command line (the tool, then its distinctive arguments)."""
    text = clean(command)
    tokens = split_command(text)
    if not tokens:
        return []
    out: list[ValueChoice] = []
    image = image_value(tokens[0], product)
    if image:
        out.append(ValueChoice("Image", image, 2.0, index, "end"))
    tool = _basename(tokens[0])
    if tool.lower() in _CMD_BUILTINS and len(tokens) > 1:
        # the built-in's name with its first argument (`dir /s`): the image alone is every cmd.exe. Cut from
        # the command's own text, quotes included (`echo "a b"`), so the value is what the event holds.
        first, second = itertools.islice(_TOKEN.finditer(text), 2)
        out.append(ValueChoice("CommandLine", text[first.start() : second.end()], 2.0, index, "inside"))
    if _RUNDLL32.fullmatch(tool) and len(tokens) > 1 and "," in tokens[1]:
        # rundll32's `<file>,<entry>`: the loaded file's name with the entry point is its signature
        file, _, rest = tokens[1].partition(",")
        entry = re.match(r"#?\w+", rest)  # written right after the comma, as the command has it
        if _basename(file) and entry:
            value = f"{_basename(file)},{entry.group(0)}"
            out.append(ValueChoice("CommandLine", value, 3.0, index, _ending(text, value)))
    seen = {tool.lower()}  # the tool is the Image, not an argument
    for token in tokens[1:]:
        for value, weight in _argument_values(token):
            if value.lower() not in seen:
                seen.add(value.lower())
                out.append(ValueChoice("CommandLine", value, weight, index, _ending(text, value)))
    return out


def _registry_values(o: Observable, index: int) -> list[ValueChoice]:
    path = o.value.strip().rstrip("\\")
    name = o.attributes.get("value_name")
    if name and not path.lower().endswith("\\" + name.lower()):
        path = f"{path}\\{name}"
    hive = _HIVE.match(path)
    after = hive.group(1) if hive else path
    # TargetObject is the key path AND the value name: a bare key is matched as a part of it, not as its end
    where: Position = "end" if name else "inside"
    out = [ValueChoice("TargetObject", clean(after), 3.0, index, where)]
    parts = after.strip("\\").split("\\")
    if len(parts) > 3:
        out.append(ValueChoice("TargetObject", "\\" + "\\".join(parts[-3:]), 2.0, index, where))
    if name and len(parts) > 2:  # the key and the value name: how SigmaHQ usually matches a value
        out.append(ValueChoice("TargetObject", "\\" + "\\".join(parts[-2:]), 2.0, index, "end"))
    data = o.attributes.get("data")
    if data:
        kind = o.attributes.get("type", "").upper()
        if kind == "REG_DWORD" and re.fullmatch(r"\d+|0x[0-9a-f]+", data.strip(), re.I):
            out.append(ValueChoice("Details", f"DWORD (0x{int(data.strip(), 0):08x})", 2.5, index))
        else:
            out += [ValueChoice("Details", v, w, index, "inside") for v, w in _argument_values(_unquote(data))]
    return out


_SERVICE_IN_COMMAND = re.compile(r"\bsc(?:\.exe)?\s+(?:create|config)\s+(\"[^\"]+\"|\S+)", re.I)
_BINPATH = re.compile(r"binpath=\s*(\"[^\"]+\"|\S+)|-BinaryPathName\s+(\"[^\"]+\"|'[^']+'|\S+)", re.I)


def _service_values(o: Observable, index: int) -> list[ValueChoice]:
    out: list[ValueChoice] = []
    name = o.attributes.get("service_name") or o.value
    command = _SERVICE_IN_COMMAND.search(name)
    if command:
        name = command.group(1)
    name = _unquote(name)
    if name and " " not in name.strip() and len(name) <= 80:
        out.append(ValueChoice("ServiceName", clean(name), 3.0, index))
    image = o.attributes.get("image_path")
    if not image:
        match = _BINPATH.search(o.source_evidence) or _BINPATH.search(o.value)
        image = next((g for g in match.groups() if g), None) if match else None
    if image:
        binary = _unquote(image)
        for token in split_command(binary):
            out += [ValueChoice("ImagePath", v, w, index, _ending(binary, v)) for v, w in _argument_values(token)]
    return out


def _network_values(o: Observable, spec: LogSourceSpec, index: int) -> list[ValueChoice]:
    value = clean(o.value)
    kind = o.attributes.get("kind", "")
    if spec.key == "windows/dns_query":
        return [ValueChoice("QueryName", value.lower().rstrip("."), 3.0, index, "end")]  # and its subdomains
    if spec.key == "proxy":
        match = re.match(r"(?i)^[a-z]+://([^/:]+)(?::\d+)?(/[^?#]*)?", value)
        if not match:
            return []
        out = [ValueChoice("cs-host", match.group(1).lower(), 3.0, index, "end")]
        if match.group(2) and len(match.group(2)) > 1:  # a proxy's c-uri may be the whole URL: the path ends it
            out.append(ValueChoice("c-uri", match.group(2), 2.5, index, "end"))
        return out
    host, _, port = value.rpartition(":") if re.search(r":\d{1,5}$", value) else (value, "", "")
    out = []
    if kind == "ip" or _IPV4.fullmatch(host):
        out.append(ValueChoice("DestinationIp", host, 3.0, index))
    else:
        out.append(ValueChoice("DestinationHostname", host.lower(), 3.0, index, "end"))
    if port and 0 < int(port) < 65536:
        out.append(ValueChoice("DestinationPort", int(port), 1.5, index))
    return out


def _lineage_values(o: Observable, product: str, index: int) -> list[ValueChoice]:
    out = []
    for field, name in (("ParentImage", o.attributes.get("parent")), ("Image", o.attributes.get("child"))):
        image = image_value(name or "", product)
        if image:
            out.append(ValueChoice(field, image, 2.5, index, "end"))
    return out


def observable_values(spec: LogSourceSpec, o: Observable, index: int) -> list[ValueChoice]:
    """Every value one observable offers for ``spec``'s fields (fields the log source lacks are left out)."""
    product = spec.logsource.get("product", "windows")
    if o.kind in ("cmdline", "scheduled_task"):
        command = o.value if o.kind == "cmdline" or " " in o.value else o.source_evidence
        found = command_values(command, product, index)
        if o.kind == "scheduled_task" and o.value not in command and " " not in o.value:
            found.append(ValueChoice("CommandLine", clean(o.value), 3.0, index, "inside"))  # the task's name
    elif o.kind == "lineage":
        found = _lineage_values(o, product, index)
    elif o.kind == "registry":
        found = _registry_values(o, index)
    elif o.kind == "service":
        found = _service_values(o, index)
    elif o.kind == "network":
        found = _network_values(o, spec, index)
    else:
        found = []
    # a value no modifier of its field can match (a path's end on an equals-only field) is no value
    return [
        c
        for c in found
        if (field := spec.field(c.field)) is not None and c.value != "" and any(c.fits(m) for m in field.modifiers)
    ]


@dataclass(frozen=True)
class ObservableChoices:
    """What one observable of a group offers a rule: its number in the prompt (1-based) and its values."""

    number: int
    observable: Observable
    values: tuple[ValueChoice, ...]  # the most distinctive first

    def of(self, field: str) -> list[ValueChoice]:
        return [c for c in self.values if c.field == field]


def observable_choices(spec: LogSourceSpec, observables: Sequence[Observable]) -> list[ObservableChoices]:
    """Per observable of the group: the values a selection built from it may match (at most
    MAX_VALUES_PER_OBSERVABLE, the most distinctive first). Observables that cannot make a specific
    selection on their own (a program name alone) offer nothing: they are left out.

    A selection takes its values from ONE observable, so its items describe one event: a registry value's
    path with that value's data, a program with its own arguments — never one observable's path with
    another's data."""
    out: list[ObservableChoices] = []
    for index, o in enumerate(observables):
        values: dict[tuple[str, str], ValueChoice] = {}
        for choice in sorted(observable_values(spec, o, index), key=lambda c: -c.weight):
            values.setdefault((choice.field, str(choice.value).lower()), choice)
        kept = tuple(list(values.values())[:MAX_VALUES_PER_OBSERVABLE])
        if kept and spec.is_specific({c.field for c in kept}):
            out.append(ObservableChoices(len(out) + 1, o, kept))
    return out
