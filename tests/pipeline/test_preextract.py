"""The deterministic pre-extractor, normalisation and hallucination guard on realistic article text."""

from __future__ import annotations

from ctistudio.pipeline.guard import guard_new_items, guard_quotes
from ctistudio.pipeline.normalise import ArticleIndex, normalise_item, refang
from ctistudio.pipeline.preextract import attention_snippets, pre_extract
from ctistudio.resources import demo_article


def values(text: str, kind: str) -> list[str]:
    return [c.value for c in pre_extract(text).of(kind)]


def test_refang_and_normalise_fold_defanging_case_and_whitespace():
    assert refang("hxxps://cdn[.]evil(.)com[/]x") == "https://cdn.evil.com/x"
    assert refang("198.51.100[.]23 and user[@]mail[dot]org") == "198.51.100.23 and user@mail.org"
    assert normalise_item("  `CMD.exe  /c   Whoami` ") == "cmd.exe /c whoami"
    assert normalise_item("HKLM\\Software\\Run\\") == normalise_item("hklm\\software\\run")


def test_demo_article_command_lines_are_found_whole():
    commands = values(demo_article(), "cmdline")
    assert "cmd.exe /c nltest /domain_trusts /all_trusts" in commands
    assert "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 624 C:\\Windows\\Temp\\lsass.dmp full" in commands
    assert any(c.startswith("schtasks /create /tn") and c.endswith("/ru SYSTEM /f") for c in commands)
    # prose that merely names a tool is not a command line
    assert not any(c.startswith(("mshta chain", "rclone destination")) for c in commands)


def test_commands_glued_together_in_flattened_html_are_split():
    text = (
        "Discovery commands observed include: nltest /domain_trusts /all_trusts nltest /dclist: "
        'net group "Domain Admins" /domain File shares were then enumerated.'
    )
    first, second, third = values(text, "cmdline")
    assert (first, second) == ("nltest /domain_trusts /all_trusts", "nltest /dclist:")
    assert third.startswith('net group "Domain Admins" /domain')


def test_prose_mentions_of_tools_are_not_commands():
    text = "The actor used PowerShell to download the payload and mshta.exe executing a script. SSH shells too."
    assert values(text, "cmdline") == []


def test_registry_paths_keep_title_case_key_names_and_stop_at_prose():
    text = (
        "They set HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\Real-Time Protection to disable it, "
        "then wrote the HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run key. PowerShell used "
        "'HKCU:\\\\Software\\\\Microsoft\\\\Windows\\\\CurrentVersion\\\\Run\\\\App'."
    )
    assert values(text, "registry") == [
        "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\Real-Time Protection",
        "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run",
        "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\App",
    ]


def test_network_indicators_including_defanged_forms():
    text = (
        "C2 at 198.51.100[.]23 and 203.0.113.77:8443, domain lantern-sync[.]workers[.]dev, stage from "
        "hxxps://cdn-update[.]lantern-sync[.]workers[.]dev/s2.ps1. The DLL lanternsvc.dll and version "
        "4.18.25050.5 are not indicators; neither is evil.exe."
    )
    found = pre_extract(text)
    assert [c.value for c in found.of("ip")] == ["198.51.100.23", "203.0.113.77:8443"]
    assert [c.value for c in found.of("url")] == ["https://cdn-update.lantern-sync.workers.dev/s2.ps1"]
    assert [c.value for c in found.of("domain")] == ["lantern-sync.workers.dev"]


def test_hashes_and_hunt_queries():
    sha256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    text = f"Loader {sha256} and md5 0123456789abcdef0123456789abcdef.\n\n```\nindex=sysmon EventCode=1\n```\n"
    found = pre_extract(text)
    assert [c.value for c in found.of("hash")] == [sha256, "0123456789abcdef0123456789abcdef"]
    [query] = found.of("hunt_query")
    assert (query.language, query.value) == ("spl", "index=sysmon EventCode=1")


def test_service_and_task_candidates_are_named_with_their_binary():
    article = demo_article()
    found = pre_extract(article)
    [service] = found.of("service")  # named by `sc.exe create` and by its registry key: one candidate
    assert service.value == "LanternSvc"
    assert service.attribute_map()["image_path"].endswith("lanternsvc.dll,DllRegister")
    assert service.evidence(article).startswith("sc.exe create LanternSvc binPath=")
    [task] = found.of("scheduled_task")
    assert task.value == "Microsoft\\Windows\\Maintenance\\LanternSync"
    assert task.attribute_map()["command"].startswith("rundll32.exe C:\\Users\\Public")


def test_registry_candidates_carry_the_value_a_command_sets():
    article = demo_article()
    keys = {c.value: c.attribute_map() for c in pre_extract(article).of("registry")}
    wdigest = keys["HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\WDigest"]
    assert wdigest == {"value_name": "UseLogonCredential", "type": "REG_DWORD", "data": "1"}
    text = (
        "Set-ItemProperty -Path 'HKCU:\\Software\\Classes\\ms-settings\\Shell\\Open\\command' "
        "-Name DelegateExecute -Value ''"
    )
    [key] = pre_extract(text).of("registry")
    assert key.attribute_map()["value_name"] == "DelegateExecute"


def test_attention_snippets_are_bounded_and_around_the_candidates():
    article = demo_article()
    snippets = attention_snippets(article, pre_extract(article).of("registry"), budget=600)
    assert "CurrentVersion\\Run" in snippets
    assert len(snippets) <= 600 + 20


def test_article_index_accepts_reflowed_and_refanged_quotes_but_not_inventions():
    index = ArticleIndex(demo_article())
    assert index.contains("`lantern-sync.workers.dev` (second stage and C2 over HTTPS)")
    assert index.contains("CMD.EXE /c   whoami /all")
    assert not index.contains("cmd.exe /c whoami /priv")


def test_guard_keeps_new_items_in_the_article_with_the_shape_of_their_kind():
    index = ArticleIndex(demo_article())
    items = [
        "CMD.EXE /c   whoami /all",  # reflowed: still the article's command
        "vssadmin delete shadows /all /quiet",  # invented
        "Within ten minutes of execution the loader ran",  # in the article, but prose
        "whoami",  # a bare tool name is not a command line
    ]
    kept, dropped = guard_new_items("cmdline", items, index)
    assert [(k.value, k.source_evidence, k.origin) for k in kept] == [
        ("cmd.exe /c whoami /all", "cmd.exe /c whoami /all", "model")  # stored as the article writes it
    ]
    assert [d.reason for d in dropped] == ["value_not_in_article", "wrong_kind", "wrong_kind"]


def test_guard_registry_value_names_network_kinds_and_lineage():
    index = ArticleIndex(demo_article())
    wdigest = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\WDigest\\UseLogonCredential"
    [registry], _ = guard_new_items("registry", [wdigest, "Software\\Lantern"], index)
    assert registry.source_evidence.startswith("reg add HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders")
    [domain], _ = guard_new_items("network", ["lantern-sync.workers.dev", "workers"], index)
    assert domain.attributes == {"kind": "domain"}
    kept, dropped = guard_new_items(
        "lineage", [("ONENOTE", "mshta.exe"), ("winword.exe", "mshta.exe"), ("cmd.exe", "cmd")], index
    )
    assert [(k.value, k.attributes["parent"]) for k in kept] == [("ONENOTE.exe → mshta.exe", "ONENOTE.exe")]
    assert "`ONENOTE.EXE` spawned `mshta.exe`" in kept[0].source_evidence
    assert [d.reason for d in dropped] == ["value_not_in_article", "wrong_kind"]


def test_guard_quotes_counts_what_it_drops():
    good, dropped = guard_quotes(["schtasks /create /tn", "the actor is from Mars", "x"], ArticleIndex(demo_article()))
    assert good == ["schtasks /create /tn"] and dropped == 2


def test_programs_named_in_prose_are_not_command_lines_but_code_is():
    prose = (
        "We saw a rundll32.exe child process, with no command line arguments. The actor used net user and "
        "net group to enumerate accounts; msbuild.exe child process have been observed too."
    )
    assert values(prose, "cmdline") == []
    assert values("Listing:\n\n    net view\n", "cmdline") == ["net view"]  # alone on its line: code
    assert values("Run `msbuild.exe project build` to compile.", "cmdline") == ["msbuild.exe project build"]
    flattened = "It then ran sc stop WinDefend and sc delete WdBoot Disables the Defender Boot Driver service."
    assert values(flattened, "cmdline") == ["sc stop WinDefend", "sc delete WdBoot"]


def test_flattened_commands_redirects_quotes_and_timestamps():
    assert values("dir > abc1.pdf tasklist >> abc1.pdf", "cmdline") == ["dir > abc1.pdf", "tasklist >> abc1.pdf"]
    quoted = 'launched as "ScreenConnect.ClientService.exe" "?e=Access&y=Guest&p=443"'
    assert values(quoted, "cmdline") == ['"ScreenConnect.ClientService.exe" "?e=Access&y=Guest&p=443"']
    xml = '<FileAttrib FileName="360rp.exe" InternalName="360rp.exe" ProductName="x" />'
    assert values(xml, "cmdline") == []
    assert values("The beacon called home at 05:27 UTC (10:57 IST).", "cmdline") == []
    assert values("at 23:00 /every:M,T cmd /c C:\\x.bat", "cmdline")[0].startswith("at 23:00 /every:M,T")


def test_a_shell_wrappers_inner_command_is_a_command_line_too():
    text = 'cmd.exe "/c ipconfig /all"\nC:\\Windows\\system32\\cmd.exe /c dir /s /b C:\\Windows\\*.xsl\n'
    assert values(text, "cmdline") == [
        'cmd.exe "/c ipconfig /all"',
        "ipconfig /all",
        "C:\\Windows\\system32\\cmd.exe /c dir /s /b C:\\Windows\\*.xsl",
        "dir /s /b C:\\Windows\\*.xsl",
    ]


def test_a_registry_key_deleted_on_its_line_says_so():
    # UNC1549 cleared the RDP history: a deletion is logged as registry_delete, never as a value set
    text = (
        'reg delete "HKCU\\Software\\Microsoft\\Terminal Server Client\\Default" /va /f\n'
        "Remove-ItemProperty -Path 'HKCU:\\Software\\Microsoft\\Windows\\CurrentVersion\\Run' -Name Updater\n"
        'reg add "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\RunOnce" /v X /d y /f\n'
    )
    keys = {c.value: c.attribute_map().get("operation") for c in pre_extract(text).of("registry")}
    assert keys["HKCU\\Software\\Microsoft\\Terminal Server Client\\Default"] == "delete"
    assert keys["HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run"] == "delete"
    assert keys["HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\RunOnce"] is None
