"""Process lineage (parent → child) the article states, found without a model.

Four forms, each read literally (never inferred from the order of events):

- prose: ``ONENOTE.EXE spawned mshta.exe, which spawned powershell.exe``, ``cmd.exe ran as a child of
  w3wp.exe``, ``powershell.exe with parent winword.exe``, ``winword.exe → cmd.exe → powershell.exe``;
- a sentence ending in ``:`` that names the parent (``… each as a child of rundll32.exe:``) followed by a
  code block: every command of the block is a child;
- process-tree notation: indented lines with ``└─``/``├─``/``|_``/``\\_`` glyphs or nested list items;
- command lines that start another program: ``cmd.exe /c whoami``, ``powershell -c "& foo.exe"``,
  ``wmic process call create "rundll32.exe …"`` (WmiPrvSE.exe is the parent Windows gives it).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from ctistudio.pipeline.candidates import Candidate
from ctistudio.pipeline.sentences import Sentence, split_sentences

# Programs an article may name without ".exe" (what analysts write: "WINWORD spawned PowerShell").
_BARE_PROCESSES = (
    r"winword|excel|powerpnt|outlook|onenote|msaccess|mspub|visio|acrord32|powershell|pwsh|cmd|mshta|"
    r"rundll32|regsvr32|wscript|cscript|msiexec|explorer|svchost|wmiprvse|w3wp|sqlservr|lsass|"
    r"winlogon|certutil|bitsadmin|schtasks|wmic|whoami|nltest|net|net1|ipconfig|systeminfo|tasklist|reg|"
    r"sc"
)
_IMAGE_TEXT = (
    r"(?:[a-z]:\\|%\w+%\\|\\\\)?(?:[\w$.-]+\\)*[\w$.-]*[\w$]\.exe"
    r"|(?:" + _BARE_PROCESSES + r")(?![\w\\/-]|\.\w)"
)
_IMAGE = re.compile(rf"(?<![\w\\/.$%-])[`'\"*]*(?P<image>{_IMAGE_TEXT})[`'\"*]*", re.I)

_MAX_GAP = 90
_PASSIVE = re.compile(
    r"\b(?:spawned|launched|started|executed|run|ran|created|invoked|called|opened)\s+(?:\w+\s+){0,2}?"
    r"(?:by|from|via|through|under)\b"
    r"|\bchild(?:ren)?(?:\s+process(?:es)?)?\s+of\b"
    r"|\bwith\s+(?:a\s+|the\s+|its\s+)?parent(?:\s+process)?(?:\s+(?:of|being))?\b"
    r"|\bparent(?:\s+process)?\s+(?:was|is|being|named)\b",
    re.I,
)
_ACTIVE = re.compile(
    r"\b(?:spawn(?:s|ed|ing)?|launch(?:es|ed|ing)?|start(?:s|ed|ing)?|execut(?:es|ed|ing)|ran|runs|running|"
    r"invok(?:es|ed|ing))\b"
    r"|\bparent(?:\s+process)?\s+of\b",
    re.I,
)
_ARROW = re.compile(r"^[\s`'\"*]*(?:→|->|-->|=>|⇒|>|»)[\s`'\"*]*$")
_PASSIVE_VOICE = re.compile(r"\b(?:was|were|is|are|been|being|be)\s+(?:\w+ly\s+)?$", re.I)
# code, a label or a list of rule titles between two names: not a sentence about them
_NOT_PROSE = re.compile(r"[:\"=\\]|\s/\w|\s-\w|[0-9a-f]{8}-", re.I)
_CLAUSE_BREAK = re.compile(r";|\.\s|,\s*(?:and|but|or)\b|\b(?:later|after|before|while|whereas)\b", re.I)


def image_name(text: str) -> str:
    """``C:\\Windows\\System32\\cmd.exe`` → ``cmd.exe``; ``PowerShell`` → ``PowerShell.exe``."""
    name = re.split(r"[\\/]", text.strip().strip("`'\"*"))[-1]
    return name if re.search(r"\.\w{2,4}$", name) else f"{name}.exe"


def looks_like_image(text: str) -> bool:
    """A process image name or path (``winword.exe``, ``C:\\…\\x.exe``, ``PowerShell``), nothing else."""
    return bool(_IMAGE.fullmatch(text.strip()))


def _pair(parent: str, child: str, start: int, end: int) -> Candidate | None:
    parent, child = image_name(parent), image_name(child)
    if parent.lower() == child.lower():
        return None
    return Candidate("lineage", f"{parent} → {child}", start, end, attributes=(("parent", parent), ("child", child)))


def _relation(gap: str) -> str | None:
    """``"parent"`` when the left image is the parent, ``"child"`` when it is the child, else None."""
    if len(gap) > _MAX_GAP:
        return None
    if _ARROW.match(gap):
        return "parent"
    if _NOT_PROSE.search(gap):
        return None
    if _PASSIVE.search(gap):
        return "child"
    verb = _ACTIVE.search(gap)
    if verb and not _PASSIVE_VOICE.search(gap[: verb.start()]) and not _CLAUSE_BREAK.search(gap):
        return "parent"
    return None


def _images(article: str, start: int, end: int) -> list[re.Match[str]]:
    return list(_IMAGE.finditer(article, start, end))


def from_prose(article: str, sentence: Sentence) -> list[Candidate]:
    found = []
    mentions = _images(article, sentence.start, sentence.end)
    for left, right in itertools.pairwise(mentions):
        relation = _relation(article[left.end() : right.start()])
        if relation == "parent":
            pair = _pair(left.group("image"), right.group("image"), left.start(), right.end())
        elif relation == "child":
            pair = _pair(right.group("image"), left.group("image"), left.start(), right.end())
        else:
            pair = None
        if pair:
            found.append(pair)
    return found


_PARENT_OF_BLOCK = re.compile(rf"(?:{_PASSIVE.pattern})\s*[`'\"*]*(?P<parent>{_IMAGE_TEXT})[`'\"*]*\s*[:.]?\s*$", re.I)


def from_introduced_block(article: str, sentences: list[Sentence], position: int) -> list[Candidate]:
    """``… each as a child of rundll32.exe:`` followed by code lines: each command is a child."""
    sentence = sentences[position]
    match = _PARENT_OF_BLOCK.search(article, sentence.start, sentence.end)
    if sentence.code or not match or _images(article, sentence.start, match.start()):
        return []
    found = []
    for line in sentences[position + 1 :]:
        if not line.code:
            break
        first = _IMAGE.match(article, line.start)
        if first:
            pair = _pair(match.group("parent"), first.group("image"), match.start("parent"), line.end)
            if pair:
                found.append(pair)
    return found


_TREE_LINE = re.compile(
    rf"^(?P<prefix>[ \t│┃|]*(?:[└├╰┗┣`+\\|]?[─━_-]*>?[ \t]*|[-*][ \t]+|\d+\.[ \t]+)?)[`'\"*]*(?P<image>{_IMAGE_TEXT})",
    re.I,
)
_TREE_MARK = re.compile(r"[└├╰┗┣│┃]|\|_|\\_|\+-|`-|^[ \t]*[-*][ \t]")


def _tree_pairs(article: str, block: list[tuple[int, str, int, int, bool]]) -> list[Candidate]:
    """Pairs of one block of image lines, when it is drawn as a tree (glyphs or nested bullets)."""
    shallowest = min(line[0] for line in block)
    if len({line[0] for line in block}) < 2 or not all(line[4] for line in block if line[0] > shallowest):
        return []
    found: list[Candidate] = []
    stack: list[tuple[int, str, int, int, bool]] = []
    for line in block:
        while stack and stack[-1][0] >= line[0]:
            stack.pop()
        if stack:
            pair = _pair(stack[-1][1], line[1], stack[-1][2], line[3])
            if pair:
                found.append(pair)
        stack.append(line)
    return found


def from_tree(article: str) -> list[Candidate]:
    """Indented process trees: each line's parent is the nearest line above it that is indented less."""
    found: list[Candidate] = []
    block: list[tuple[int, str, int, int, bool]] = []  # (depth, image, line start, line end, drawn as a tree)
    position = 0
    for raw in article.splitlines(keepends=True):
        match = _TREE_LINE.match(raw)
        if match:
            prefix = match.group("prefix")
            depth = len(prefix.expandtabs(4))
            block.append(
                (
                    depth,
                    match.group("image"),
                    position,
                    position + len(raw.rstrip("\n")),
                    bool(_TREE_MARK.search(prefix)),
                )
            )
        elif block:
            found += _tree_pairs(article, block)
            block = []
        position += len(raw)
    if block:
        found += _tree_pairs(article, block)
    return found


_SHELL_CHILD = re.compile(
    r"^[\"']?(?:[^\s\"']*[\\/])?(?P<parent>cmd|powershell|pwsh)(?:\.exe)?[\"']?\s+(?:[-/]\S+\s+)*?"
    r"(?:/[ckr]|-c|-command|-commandwithargs)\s+[\"'&\s]*(?:start\s+(?:/\w+\s+)*(?:\"\"\s+)?)?"
    rf"[\"']?(?P<child>{_IMAGE_TEXT}|[\w$.-]+\.exe)(?![\w.-])",
    re.I,
)
_WMI_CHILD = re.compile(rf"\bprocess\s+call\s+create\s+[\"']?(?P<child>{_IMAGE_TEXT})", re.I)
_BUILTINS = {"start", "echo", "dir", "copy", "del", "set", "type", "cd", "mkdir", "md", "move", "ren", "cls"}


def from_command(command: Candidate) -> Iterator[Candidate]:
    """``cmd.exe /c whoami`` → cmd.exe → whoami.exe; ``wmic … process call create "x.exe"`` → WmiPrvSE.exe → x.exe."""
    shell = _SHELL_CHILD.match(command.value)
    if shell and shell.group("child").lower() not in _BUILTINS:
        pair = _pair(shell.group("parent"), shell.group("child"), command.start, command.end)
        if pair:
            yield pair
    wmi = _WMI_CHILD.search(command.value)
    if wmi and re.match(r"[\"']?(?:[^\s\"']*[\\/])?wmic(?:\.exe)?\b", command.value, re.I):
        pair = _pair("WmiPrvSE.exe", wmi.group("child"), command.start, command.end)
        if pair:
            yield pair


def find_lineage(article: str, commands: list[Candidate]) -> list[Candidate]:
    """Every parent → child pair the article states, in article order (duplicates left to the caller)."""
    sentences = split_sentences(article)
    found: list[Candidate] = []
    for position, sentence in enumerate(sentences):
        if not sentence.code:
            found += from_prose(article, sentence)
            found += from_introduced_block(article, sentences, position)
    found += from_tree(article)
    for command in commands:
        found += from_command(command)
    return sorted(found, key=lambda c: c.start)
