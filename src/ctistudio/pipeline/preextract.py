"""Deterministic pre-extractor: command lines, process lineage, registry paths, services, scheduled tasks,
hunt queries, hashes, IPs, domains and URLs, each a verbatim span of the article.

Two jobs. It points the extraction sub-agents at the parts of a long article that matter (attention
snippets survive even when the article itself must be truncated to fit a small context window), and it is
the floor of the extract step: with no model at all the pipeline still yields these candidates, each one a
verbatim span of the article. It reads defanged indicators (``198.51.100[.]23``, ``hxxps://``) and returns
them refanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ctistudio.pipeline.candidates import Candidate
from ctistudio.pipeline.hunt_queries import find_hunt_queries
from ctistudio.pipeline.lineage import find_lineage
from ctistudio.pipeline.normalise import normalise_item, refang
from ctistudio.pipeline.persistence import find_scheduled_tasks, find_services

__all__ = ["Candidate", "PreExtraction", "attention_snippets", "find_hunt_queries", "pre_extract"]


def _words(text: str) -> list[str]:
    return text.split()


# -- command lines -------------------------------------------------------------------------------
# Tools whose name alone (with arguments after it) marks a command line.
_TOOLS = _words(
    "cmd powershell pwsh rundll32 regsvr32 mshta wscript cscript schtasks nltest whoami ipconfig systeminfo "
    "tasklist taskkill wmic certutil bitsadmin msiexec vssadmin wbadmin bcdedit netsh curl wget psexec psexec64 "
    "procdump ntdsutil esentutl findstr attrib icacls takeown cmdkey klist dsquery adfind nslookup netstat "
    "quser qwinsta mstsc forfiles installutil regasm regsvcs msbuild odbcconf cmstp extrac32 makecab 7z 7za "
    "rclone anydesk mimikatz rubeus sharphound python python3 bash chmod crontab systemctl nohup ssh scp "
    "sudo openssl ncat socat xcopy robocopy fsutil wevtutil auditpol dism pnputil mavinject mklink "
    "reagentc hostname arp route ping nbtstat gpresult setspn csvde ldifde dsget ntdsutil ngrok plink"
)
# Short or common words that are commands only with one of these sub-commands or switches after them.
_SUBCOMMANDS = {
    "net": r"(?:user|group|localgroup|use|share|view|start|stop|accounts|config|session|time)\b",
    "net1": r"(?:user|group|localgroup|use|share|view|start|stop|accounts|config|session|time)\b",
    "reg": r"(?:add|delete|query|save|export|import|copy|load)\b",
    "sc": r"(?:create|config|start|stop|delete|query|qc|description|failure)\b",
    "copy": r"(?:/[a-z]\b|\S*[\\*])",
    "dir": r"(?:/[a-z]\b|>|[a-z]:\\)",
    "del": r"(?:/[a-z]\b|[a-z]:\\)",
    "echo": r"\S.*(?:>|\|)",
    "start": r"(?:/[a-z]+\b|\"|[a-z]:\\)",
    "tar": r"-[a-z]+\b",
    "at": r"(?:\\\\\S+\s+)?\d{1,2}:\d{2}(?::\d{2})?\s+(?:/\w|\"|[a-z]:\\|\S+\.(?:exe|bat|cmd)\b|cmd\b|powershell\b)",
    "type": r"[a-z]:\\",
    "set": r"[a-z_]+=",
}
_EXE_NAME = r"[\w.$-]+\.(?:exe|bat|cmd|ps1|vbs|js|hta|msi)"
_PATH_PREFIX = r"(?:\"?(?:[a-z]:\\|%\w+%\\|\\\\)[^\s\"]*?\\)?"
_ARG_START = r"(?:[/-]{1,2}\w|\"|'|[a-z]:\\|\\\\|%\w+%|\$|\w+[:=]|\*|>{1,2}|[a-z]{2,})"
_TOOL_RE = "|".join(sorted(map(re.escape, _TOOLS), key=len, reverse=True))
_COMMAND_START = re.compile(
    rf"(?<![\w\\/.$-])(?P<cmd>{_PATH_PREFIX}(?:{_EXE_NAME}|(?:{_TOOL_RE})(?:\.exe)?)\"?)(?=[ \t]+{_ARG_START})"
    rf"|(?<![\w\\/.$-])(?P<sub>(?:{'|'.join(_SUBCOMMANDS)})(?:\.exe)?)[ \t]+(?=\S)",
    re.I,
)
# A command line ends at a line end, at a sentence end, or before prose that describes it.
_COMMAND_END = re.compile(
    r"\n|\.\s+(?=[A-Z][a-z])|\s+(?:Figure|Table|Image|Source|Screenshot)\s+\d|[ \t]{2,}|\s(?=Command line:)"
    r"|,\s+(?:and|or|which|then|while|as|but|to|where|when)\b|\s+(?=\d{1,3}\[\.\]\d)"
    # flattened HTML: the sentence describing the command follows it on the same line ("… Disables the …")
    r"|\s+(?=[A-Z][a-z]+,?\s+(?:the|a|an|to|of|for|and|is|are|was|were|this|that|these|its|their|with|from|by)\s)"
)
_MAX_COMMAND = 600
_TRAILING_WORD = re.compile(r"(?:\s+(?:and|or|then|but|which|with|to|the|a|an))+$", re.I)

# -- registry ---------------------------------------------------------------------------------------
_HIVES = (
    r"HKLM|HKCU|HKCR|HKU|HKCC|HKEY_LOCAL_MACHINE|HKEY_CURRENT_USER|HKEY_CLASSES_ROOT|HKEY_USERS|HKEY_CURRENT_CONFIG"
)
_SEGMENT = r"[^\\\s\"'`<>|;,]+(?: [A-Za-z0-9(][^\\\s\"'`<>|;,/]*)*"
_REGISTRY = re.compile(rf"(?<![\w])(?:{_HIVES})(?::)?(?:\\\\?{_SEGMENT})+\\?", re.I)

# -- network and hashes ------------------------------------------------------------------------------
_DOT = r"(?:\.|\[\.\]|\(\.\)|\{\.\}|\[dot\])"
_IPV4 = re.compile(rf"(?<![\w.])(?:\d{{1,3}}{_DOT}){{3}}\d{{1,3}}(?::\d{{1,5}})?(?![\w.]*\w)", re.I)
_URL = re.compile(r"\b(?:hxxps?|https?|fxp|ftp)(?:\[:\]|:)//(?:\[\.\]|\[/\]|[^\s\"'<>`)\]\[])+", re.I)
_DOMAIN = re.compile(
    rf"(?<![\w@/\\.-])(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?{_DOT})+[a-z][a-z0-9-]{{1,23}}(?![\w-]|\.\w)", re.I
)
_HASH = re.compile(r"(?<![0-9a-f])(?:[0-9a-f]{64}|[0-9a-f]{40}|[0-9a-f]{32})(?![0-9a-f])", re.I)
_COMMON_TLDS = set(
    _words(
        "com net org io ru cn info biz xyz top dev app online site club live me co us uk de fr nl it es pl br in "
        "jp kr ir kp su ua tk ml ga cf gq pw cc tv ws icu shop store cloud tech space website link click "
        "fun host press pro gov edu mil int eu ca au ch se no fi dk cz at be hu ro bg gr pt tr il sa ae "
        "hk tw sg my id th vn ph pk bd ng za ke eg ma mx ar cl pe ve by kz uz az am ge md lt lv ee is ie"
    )
)
_NOT_TLDS = set(
    _words(
        "exe dll sys bat cmd ps1 psm1 vbs vbe js jse hta msi lnk zip rar 7z gz tar iso img vhd doc docx xls xlsx "
        "ppt pptx pdf txt log ini cfg conf json xml yml yaml csv dat bin tmp jpg jpeg png gif bmp html htm php "
        "asp aspx jsp py sh so dmp one wsf scr cpl ocx drv inf reg db sqlite key pem crt evtx etl dit hive "
        "local lan internal example invalid test"
    )
)


def _trim(text: str, keep: str = "") -> str:
    strip = "".join(c for c in " \t.,;:)`'\u201d" if c not in keep)
    return text.rstrip(strip).rstrip()


def find_command_lines(article: str) -> list[Candidate]:
    found: list[Candidate] = []
    position = 0
    for match in _COMMAND_START.finditer(article):
        if match.start() < position:
            continue
        if match.group("sub"):
            word = match.group("sub").lower().removesuffix(".exe")
            rest = article[match.end() : match.end() + 80]
            if not re.match(_SUBCOMMANDS[word], rest, re.I):
                continue
        tail = article[match.start() : match.start() + _MAX_COMMAND]
        end_match = _COMMAND_END.search(tail, len(match.group(0)))
        text = tail[: end_match.start()] if end_match else tail
        if match.start() > 0 and article[match.start() - 1] == "`":
            text = text.split("`", 1)[0]  # inline code ends at its closing backtick
        # a second command glued onto the same line (flattened HTML) starts a new candidate
        glued = _COMMAND_START.search(text, len(match.group(0)) + 1)
        while glued and not _starts_new_command(text, glued, len(match.group(0))):
            glued = _COMMAND_START.search(text, glued.end())
        if glued:
            text = text[: glued.start()]
        text = _trim(_TRAILING_WORD.sub("", _trim(text, keep=":")), keep=":")
        start = match.start()
        if match.group("cmd") and match.group("cmd").endswith('"') and not match.group("cmd").startswith('"'):
            if re.search(r"=\s*\"$", article[max(0, start - 40) : start]):
                continue  # Name="tool.exe" Other="…": a value in XML or a config file, not a command
            if start > 0 and article[start - 1] == '"':  # "tool.exe" "arguments": keep the opening quote
                start, text = start - 1, '"' + text
        tool = (match.group("cmd") or match.group("sub")).strip().strip('"')
        tool = re.split(r"[\\/]", tool)[-1]
        arguments = text[len(match.group(0)) :]
        if len(text) < 6 or " " not in text:
            continue
        if not match.group("sub") and not _looks_like_arguments(tool, arguments):
            continue
        if _named_in_prose(match, arguments, article, start + len(text)):
            continue
        found.append(Candidate("cmdline", text, start, start + len(text)))
        position = start + len(text)
    return found


# What arguments have and prose has not: a switch, a path, an assignment, a quote, an operator, a file name.
_TECHNICAL = re.compile(r"[/\\:=%$\"'<>|&*@]|\.\w|(?:^|\s)--?\w")
_LINE_LEAD = re.compile(r"(?:^|\n)[ \t]*(?:[-*•>]|\d+[.)]|\$|#|PS [^>\n]*>|[a-z]:\\[^>\n]*>)?[ \t]*`?$", re.I)


_SHELL_WRAPPER = re.compile(
    r"(?:\"?[^\s\"]*[\\/])?cmd(?:\.exe)?\"?\s+(?:/[a-z]\s+)*(?:\"/[ckr]\s+(?P<switch_quoted>[^\"]+)\"$|/[ckr]\s+"
    r"(?P<inner>\"(?P<quoted>[^\"]+)\"$|[^\"].*))",
    re.I,
)


def inner_commands(commands: list[Candidate]) -> list[Candidate]:
    """``cmd.exe /c whoami /all`` → ``whoami /all`` too: what the child process's command line is."""
    found = []
    for command in commands:
        wrapper = _SHELL_WRAPPER.match(command.value)
        if not wrapper:
            continue
        group = next(g for g in ("switch_quoted", "quoted", "inner") if wrapper.group(g))
        inner = wrapper.group(group).strip()
        if inner and looks_like_command(inner):
            start = command.start + wrapper.start(group)
            found.append(Candidate("cmdline", inner, start, start + len(inner)))
    return found


def _named_in_prose(match: re.Match[str], arguments: str, article: str, end: int) -> bool:
    """``rundll32.exe child process, with no arguments``, ``net user and``: a program named in a sentence.

    A sub-command word (``net user``, ``sc stop``) followed by a word of prose is prose; a program followed
    only by plain words is prose unless the text sets it apart as code."""
    if match.group("sub"):
        words = arguments.split()
        if len(words) < 2:  # "net view": a command alone on its line, a word in a sentence
            return not _set_apart(article, match.start(), end)
        return words[1].lower().strip(".,;:") in _PROSE_WORDS
    return not _TECHNICAL.search(arguments) and not _set_apart(article, match.start(), end)


def _set_apart(article: str, start: int, end: int) -> bool:
    """The command is written as code: in backticks, or alone on its line (a code block, a listing)."""
    if start > 0 and article[start - 1] == "`":
        return True
    line_end = article.find("\n", end)
    rest = article[end : len(article) if line_end < 0 else line_end]
    return bool(_LINE_LEAD.search(article[max(0, start - 200) : start])) and not rest.strip(" \t`")


_PROSE_WORDS = set(
    _words(
        "to and or on in of at by as is was were are be been has had have with from for into via that which the "
        "a an then also under itself this these those it its executable file binary process tool utility command "
        "commands script scripts payload malware code shell shells session sessions instance window windows "
        "request requests traffic connection connections abuse usage enumeration activity events"
    )
)


def _looks_like_arguments(tool: str, args: str) -> bool:
    """Real arguments start with a switch, a path, a quote, an operator or a file name; prose starts with a
    word like "to", "executable" or "executing" (``PowerShell to download …``, ``mshta.exe executing …``)."""
    tokens = args.split()
    if not tokens:
        return False
    first = tokens[0].rstrip(".,;:" if len(tokens) == 1 else ".,;")
    if re.match(r"[/\\\"'%$*>|<-]|\w+[=:]|\w[\w-]*\.\w", first):
        return True
    if not first.isalpha() or first.lower() in _PROSE_WORDS or re.search(r"(?:ing|ed)$", first.lower()):
        return False
    # plain words after the tool: only when the tool is written like a command (lower case or with .exe)
    written_as_command = tool.islower() or tool.lower().endswith(".exe")
    return written_as_command and first[0].islower() and len(tokens) >= 2


_LAUNCHERS = re.compile(
    r"(?:^|\s)(?:/[ckr]|-c|-command|-e|-enc|&&?|\|\|?|;|start|runas|psexec(?:64)?(?:\.exe)?|\\\\\S+|"
    r"cmd(?:\.exe)?|powershell(?:\.exe)?|pwsh(?:\.exe)?|wmic(?:\.exe)?|call|create|/tr|/d|binpath=)$",
    re.I,
)


def _starts_new_command(text: str, match: re.Match[str], head: int) -> bool:
    """Flattened HTML glues commands together (``nltest /dclist: net group …``): a tool name after a complete
    argument starts a new command, but not inside quotes or after a launcher (``cmd /c whoami``)."""
    before = text[: match.start()]
    if not before[head:].strip():
        return False  # the first argument of a command is never a new command
    if before.count('"') % 2 == 1 or before.count("'") % 2 == 1:
        return False
    return not _LAUNCHERS.search(before.rstrip())


_SENTENCE_STARTERS = set(_words("The This These That It In On A An And To For With Where When Then By If As Is Was"))


def _last_segment(segment: str) -> str:
    """The key name ending a registry path: Title Case words continue it (``Real-Time Protection``), a lower
    case word or a switch ends it (``…\\Run key``, ``…\\WDigest /v``)."""
    words = segment.split(" ")
    kept = [words[0]]
    for word in words[1:]:
        if not word or not (word[0].isupper() or word[0].isdigit()) or word in _SENTENCE_STARTERS:
            break
        kept.append(word)
    return " ".join(kept)


def find_registry_paths(article: str) -> list[Candidate]:
    found = []
    for match in _REGISTRY.finditer(article):
        start, text = match.start(), match.group(0)
        quoted = start > 0 and article[start - 1] in "\"'"
        closing = article.find(article[start - 1], start) if quoted else -1
        if quoted and 0 < closing - start < 400:
            text = article[start:closing]
        else:
            head, _, last = text.rstrip("\\").rpartition("\\")
            text = f"{head}\\{_last_segment(last)}" if head else text
            if match.group(0).endswith("\\") and text == match.group(0).rstrip("\\"):
                text += "\\"
        text = _trim(text)
        if text.count("\\") >= 1:
            line_end = article.find("\n", start + len(text))
            rest = article[start + len(text) : len(article) if line_end < 0 else line_end]
            attributes = _registry_value(rest)
            line_start = article.rfind("\n", 0, start) + 1
            if _DELETION.search(article[line_start:start]):
                attributes += (("operation", "delete"),)
            found.append(Candidate("registry", _canonical_key(text), start, start + len(text), attributes=attributes))
    return found


# A command on the key's own line, before it, that deletes it or one of its values (Sysmon logs a deletion as
# registry_delete, event 12, not as a value set).
_DELETION = re.compile(r"\breg(?:\.exe)?\s+delete\b|\bRemove-Item(?:Property)?\b", re.I)


_REG_SWITCHES = {
    "value_name": re.compile(r"^[^|&\n]*?\s/v\s+(\"[^\"]*\"|\S+)", re.I),
    "type": re.compile(r"^[^|&\n]*?\s/t\s+(\w+)", re.I),
    "data": re.compile(r"^[^|&\n]*?\s/d\s+(\"[^\"]*\"|\S+)", re.I),
}
_PS_PARAMETERS = {
    "value_name": re.compile(r"^[^|;\n]*?\s-Name\s+(\"[^\"]*\"|'[^']*'|\S+)", re.I),
    "type": re.compile(r"^[^|;\n]*?\s-(?:Property)?Type\s+(\w+)", re.I),
    "data": re.compile(r"^[^|;\n]*?\s-Value\s+(\"[^\"]*\"|'[^']*'|\S+)", re.I),
}


def _registry_value(rest: str) -> tuple[tuple[str, str], ...]:
    """The value a command sets under a key: ``/v NAME /t TYPE /d DATA`` (reg.exe) or ``-Name``/``-Value``
    (PowerShell), read from the rest of the line after the key."""
    for patterns in (_REG_SWITCHES, _PS_PARAMETERS):
        found = {name: m.group(1).strip("\"'") for name, p in patterns.items() if (m := p.search(rest))}
        if "value_name" in found:
            return tuple(found.items())
    return ()


def _canonical_key(path: str) -> str:
    """``HKCU:\\\\Software\\\\X`` (PowerShell, escaped) → ``HKCU\\Software\\X``."""
    return re.sub(r"\\{2,}", r"\\", re.sub(r"^(\w+):", r"\1", path))


def _valid_ip(text: str) -> bool:
    octets = refang(text).split(":")[0].split(".")
    return len(octets) == 4 and all(o.isdigit() and int(o) <= 255 for o in octets)


def find_network(article: str) -> list[Candidate]:
    found: list[Candidate] = []
    taken: list[tuple[int, int]] = []
    for match in _URL.finditer(article):
        text = _trim(match.group(0))
        found.append(Candidate("url", refang(text), match.start(), match.start() + len(text)))
        taken.append((match.start(), match.start() + len(text)))
    for match in _IPV4.finditer(article):
        if _valid_ip(match.group(0)) and not _inside(match.start(), taken):
            found.append(Candidate("ip", refang(match.group(0)), match.start(), match.end()))
    for match in _DOMAIN.finditer(article):
        text = match.group(0)
        if _inside(match.start(), taken) or not _plausible_domain(text):
            continue
        found.append(Candidate("domain", refang(text).lower(), match.start(), match.end()))
    return found


def _inside(index: int, spans: list[tuple[int, int]]) -> bool:
    return any(a <= index < b for a, b in spans)


def _plausible_domain(text: str) -> bool:
    plain = refang(text).lower()
    tld = plain.rsplit(".", 1)[-1]
    if tld in _NOT_TLDS or plain.replace(".", "").isdigit():
        return False
    defanged = plain != text.lower()
    return defanged or tld in _COMMON_TLDS


def find_hashes(article: str) -> list[Candidate]:
    return [
        Candidate("hash", m.group(0).lower(), m.start(), m.end())
        for m in _HASH.finditer(article)
        if re.search(r"[a-f]", m.group(0), re.I) and re.search(r"\d", m.group(0))
    ]


# -- what a single value looks like (the guard checks a model's new items with these) -----------------------
_CMDLET = re.compile(r"[A-Z][a-z]+-[A-Z][A-Za-z]+\s+\S")
_HIVE_START = re.compile(rf"[\"'`]?(?:{_HIVES}):?\\", re.I)


def looks_like_command(text: str) -> bool:
    """A command line with arguments: a tool, an executable or a PowerShell cmdlet at its start."""
    text = text.strip().strip("`")
    found = find_command_lines(text)
    return bool(found and found[0].start <= 1) or bool(_CMDLET.match(text))


def looks_like_registry_path(text: str) -> bool:
    return bool(_HIVE_START.match(text.strip())) and "\\" in text


def network_kind(text: str) -> str | None:
    """``ip``, ``domain`` or ``url`` when the whole of ``text`` is one network indicator, else None."""
    text = text.strip().strip("`'\"")
    found = find_network(text)
    if found and found[0].start == 0 and found[0].end >= len(text) - 1:
        return found[0].kind
    return None


@dataclass
class PreExtraction:
    """Everything the regexes found, by kind, in article order, without duplicates."""

    candidates: list[Candidate]

    def of(self, *kinds: str) -> list[Candidate]:
        return [c for c in self.candidates if c.kind in kinds]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.candidates:
            out[c.kind] = out.get(c.kind, 0) + 1
        return out


def pre_extract(article: str) -> PreExtraction:
    """Run every finder over ``article``; duplicates (same kind, same normalised value) are merged, the first
    one kept with the attributes of the others added (a service named by ``sc create`` and by its key)."""
    queries = find_hunt_queries(article)
    query_spans = [(q.start, q.end) for q in queries]
    commands = [c for c in find_command_lines(article) if not _inside(c.start, query_spans)]
    registry = [r for r in find_registry_paths(article) if not _inside(r.start, query_spans)]
    everything = [
        *commands,
        *inner_commands(commands),
        *find_lineage(article, commands),
        *find_services(article),
        *find_scheduled_tasks(article),
        *registry,
        *find_network(article),
        *find_hashes(article),
        *queries,
    ]
    unique: dict[tuple[str, str], Candidate] = {}
    for candidate in sorted(everything, key=lambda c: (c.start, c.kind)):
        key = (candidate.kind, normalise_item(candidate.value))
        first = unique.get(key)
        if first is None:
            unique[key] = candidate
        elif candidate.attributes:
            merged = {**candidate.attribute_map(), **first.attribute_map()}
            unique[key] = replace(first, attributes=tuple(merged.items()))
    return PreExtraction(list(unique.values()))


def attention_snippets(article: str, candidates: list[Candidate], *, radius: int = 160, budget: int = 2400) -> str:
    """The article around ``candidates`` (merged windows, in order), at most ``budget`` characters."""
    windows: list[list[int]] = []
    for c in sorted(candidates, key=lambda c: c.start):
        start, end = max(0, c.start - radius), min(len(article), c.end + radius)
        if windows and start <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], end)
        else:
            windows.append([start, end])
    parts, used = [], 0
    for start, end in windows:
        piece = " ".join(article[start:end].split())
        if used + len(piece) > budget:
            piece = piece[: max(0, budget - used)]
        if not piece:
            break
        parts.append(f"… {piece} …")
        used += len(piece)
    return "\n".join(parts)
