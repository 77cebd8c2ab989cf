"""A Sigma answer as a good model gives it, for the doubles of tests and benchmarks (fits the step's schema)."""

from __future__ import annotations

import json
from typing import Any

# One rule for the process-creation group of an article that shows `rundll32 comsvcs.dll, MiniDump`: the
# fields, modifiers and values come from the enums the sigma step's schema offers for such a group.
LSASS_RULE: dict[str, Any] = {
    "title": "Rundll32 Dumping LSASS With Comsvcs MiniDump",
    "description": "Comsvcs.dll's MiniDump export called through rundll32 writes a memory dump of LSASS.",
    "tags": ["attack.t1003.001"],
    "level": "high",
    "selections": [
        [
            {"field": "Image", "modifier": "endswith", "values": ["\\rundll32.exe"]},
            {"field": "CommandLine", "modifier": "contains|all", "values": ["comsvcs.dll", "MiniDump"]},
        ]
    ],
    "match": "all",
    "falsepositives": ["Administrators creating process dumps for troubleshooting"],
}


def sigma_answer(*rules: dict[str, Any]) -> str:
    """The answer text of a ``sigma`` call choosing ``rules``."""
    return json.dumps({"rules": list(rules)})
