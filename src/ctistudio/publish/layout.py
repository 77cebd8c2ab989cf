"""Where a rule goes in a SigmaHQ-style repository, and what its file is called.

SigmaHQ keeps rules in one folder per log source with a file-name prefix per log source
(``rules/windows/process_creation/proc_creation_win_<topic>.yml``, ``rules/windows/registry/registry_set/
registry_set_<topic>.yml`` …). The table below is SigmaHQ's convention for the log sources ctistudio writes
rules for and the common others (a test checks it against the SigmaHQ snapshot); anything else goes to
``rules/<product>/<category or service>/`` with ``<category or service>_<product>_`` as prefix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# (product, category, service) → (folder, file-name prefix)
LAYOUT: dict[tuple[str | None, str | None, str | None], tuple[str, str]] = {
    ("windows", "process_creation", None): ("rules/windows/process_creation", "proc_creation_win_"),
    ("windows", "registry_set", None): ("rules/windows/registry/registry_set", "registry_set_"),
    ("windows", "registry_event", None): ("rules/windows/registry/registry_event", "registry_event_"),
    ("windows", "registry_add", None): ("rules/windows/registry/registry_add", "registry_add_"),
    ("windows", "registry_delete", None): ("rules/windows/registry/registry_delete", "registry_delete_"),
    ("windows", "file_event", None): ("rules/windows/file/file_event", "file_event_win_"),
    ("windows", "file_delete", None): ("rules/windows/file/file_delete", "file_delete_win_"),
    ("windows", "file_access", None): ("rules/windows/file/file_access", "file_access_win_"),
    ("windows", "image_load", None): ("rules/windows/image_load", "image_load_"),
    ("windows", "network_connection", None): ("rules/windows/network_connection", "net_connection_win_"),
    ("windows", "dns_query", None): ("rules/windows/dns_query", "dns_query_win_"),
    ("windows", "ps_script", None): ("rules/windows/powershell/powershell_script", "posh_ps_"),
    ("windows", "ps_module", None): ("rules/windows/powershell/powershell_module", "posh_pm_"),
    ("windows", "ps_classic_start", None): ("rules/windows/powershell/powershell_classic", "posh_pc_"),
    ("windows", "process_access", None): ("rules/windows/process_access", "proc_access_win_"),
    ("windows", "create_remote_thread", None): ("rules/windows/create_remote_thread", "create_remote_thread_"),
    ("windows", "pipe_created", None): ("rules/windows/pipe_created", "pipe_created_"),
    ("windows", "driver_load", None): ("rules/windows/driver_load", "driver_load_win_"),
    ("windows", "create_stream_hash", None): ("rules/windows/create_stream_hash", "create_stream_hash_"),
    ("windows", None, "security"): ("rules/windows/builtin/security", "win_security_"),
    ("windows", None, "system"): ("rules/windows/builtin/system", "win_system_"),
    ("windows", None, "windefend"): ("rules/windows/builtin/windefend", "win_defender_"),
    ("linux", "process_creation", None): ("rules/linux/process_creation", "proc_creation_lnx_"),
    ("linux", "file_event", None): ("rules/linux/file_event", "file_event_lnx_"),
    ("linux", "network_connection", None): ("rules/linux/network_connection", "net_connection_lnx_"),
    ("macos", "process_creation", None): ("rules/macos/process_creation", "proc_creation_macos_"),
    (None, "proxy", None): ("rules/web/proxy_generic", "proxy_"),
    (None, "webserver", None): ("rules/web/webserver_generic", "web_"),
    (None, "dns", None): ("rules/network/dns", "net_dns_"),
    (None, "antivirus", None): ("rules/category/antivirus", "av_"),
    ("aws", None, "cloudtrail"): ("rules/cloud/aws/cloudtrail", "aws_"),
}
MAX_TOPIC = 70


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def folder_and_prefix(logsource: Mapping[str, Any]) -> tuple[str, str]:
    """The folder (relative to the repository root) and file-name prefix for a rule's log source."""
    product = logsource.get("product") or None
    category = logsource.get("category") or None
    service = logsource.get("service") or None
    key = (product, category, service)
    if key in LAYOUT:
        return LAYOUT[key]
    if (product, category, None) in LAYOUT:  # a category rule narrowed to a service keeps its folder
        return LAYOUT[(product, category, None)]
    kind = _slug(str(category or service or "generic"))
    owner = _slug(str(product or "generic"))
    return f"rules/{owner}/{kind}", f"{kind}_{owner}_"


def rule_path(logsource: Mapping[str, Any], title: str) -> str:
    """``rules/windows/process_creation/proc_creation_win_onenote_spawning_mshta.yml`` for a rule."""
    folder, prefix = folder_and_prefix(logsource)
    topic = _slug(title)
    # "Windows …" in a title would repeat the prefix: drop its words (and the product) from the topic's start
    words = {*prefix.strip("_").split("_"), _slug(str(logsource.get("product") or ""))} - {""}
    while topic.split("_", 1)[0] in words and "_" in topic:
        topic = topic.split("_", 1)[1]
    return f"{folder}/{prefix}{topic[:MAX_TOPIC].rstrip('_') or 'rule'}.yml"
