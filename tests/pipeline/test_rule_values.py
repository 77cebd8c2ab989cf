"""What a selection may match, derived by code from a command line: the process image and its arguments."""

from __future__ import annotations

from ctistudio.pipeline.preextract import pre_extract
from ctistudio.pipeline.rule_draft import DetectionItem, RuleDraft
from ctistudio.pipeline.rule_values import command_values
from ctistudio.pipeline.sigma_gen import specific_draft
from ctistudio.resources import demo_article
from ctistudio.sigma.taxonomy import log_source


def choices(command: str) -> list[tuple[str, str | int]]:
    return [(c.field, c.value) for c in command_values(command, "windows", 0)]


def test_a_built_in_command_of_cmd_runs_as_cmd_exe():
    # `dir.exe` or `echo.exe` never start: a rule on them would never fire
    found = choices("dir /s /b C:\\Windows\\system32\\*htable.xsl")
    assert ("Image", "\\cmd.exe") in found and ("CommandLine", "dir /s") in found
    assert not any(field == "Image" and value != "\\cmd.exe" for field, value in found)
    assert ("Image", "\\cmd.exe") in choices("mklink /D C:\\ProgramData\\roming C:\\ProgramData\\Microsoft")
    assert ("Image", "\\net.exe") in choices('net group "Domain Admins" /domain')  # a program stays itself


def test_rundll32_offers_the_loaded_file_with_its_entry_point():
    assert ("CommandLine", "COIm.jpg,init") in choices("rundll32 c:\\programdata\\COIm.jpg,init")
    found = choices("rundll32.exe C:\\Users\\victim\\AppData\\Roaming\\Microsoft\\Crypto\\lanternsvc.dll,DllRegister")
    assert ("CommandLine", "lanternsvc.dll,DllRegister") in found
    # "comsvcs.dll, MiniDump": the entry is another argument, matched on its own
    found = choices("rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 624 C:\\Windows\\Temp\\lsass.dmp full")
    assert ("CommandLine", "MiniDump") in found and not any("," in str(v) for _, v in found)


def test_every_command_line_value_is_written_in_its_command():
    commands = [c.value for c in pre_extract(demo_article()).of("cmdline")]
    commands += [
        'rundll32.exe "C:\\Program Files\\x\\a.dll,Start" /s',
        "echo secret | C:\\Tools\\AnyDesk.exe --set-password",
        'echo "hello world" > C:\\Users\\Public\\x.txt',  # a built-in with a quoted argument
    ]
    for command in commands:
        for field, value in choices(command):
            if field == "CommandLine":
                assert str(value).lower() in command.lower(), (command, value)


def test_a_selection_of_only_short_common_words_is_not_a_rule():
    # seen on the sigma eval set: the 0.5B model chose `CommandLine|contains: user` of `net user DC-01$ P@ssw0rd`
    process = log_source("windows/process_creation")

    def draft(*items: DetectionItem) -> RuleDraft:
        return RuleDraft(title="t", selections=[list(items)])

    weak = DetectionItem(field="CommandLine", modifier="contains|all", values=["user", "/add"])
    assert specific_draft(draft(weak), process) is None
    with_program = DetectionItem(field="Image", modifier="endswith", values=["\\net.exe"])
    assert specific_draft(draft(with_program, weak), process) is not None  # net.exe with `user /add` is a rule
    together = DetectionItem(field="CommandLine", modifier="contains|all", values=["-nop", "hidden", "bypass"])
    assert specific_draft(draft(together), process) is not None  # three switches together are a signature
    for strong in ("MiniDump", "/domain_trusts", "COIm.jpg,init", "AntiVirusProduct"):
        item = DetectionItem(field="CommandLine", modifier="contains", values=[strong])
        assert specific_draft(draft(item), process) is not None, strong
