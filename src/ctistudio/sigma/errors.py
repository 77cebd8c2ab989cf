"""Errors of the Sigma services (validation, conversion, corpus and similarity index).

    CtiStudioError (ctistudio.errors)
    ├── NotFound
    │   └── SigmaIndexMissing     no similarity index at the expected path: build one first
    ├── InvalidInput
    │   └── SigmaRuleUnreadable   the text is not a Sigma rule at all (not YAML, not a mapping)
    └── SigmaError
        ├── ConversionFailed      pySigma could not turn a rule into a backend query
        ├── CorpusError           the rules folder is missing, empty or unreadable; a git clone failed
        └── SigmaIndexInvalid     the index file is corrupt or of another format version

An *invalid rule* is not an error: :func:`ctistudio.sigma.validate_rule` returns its issues as data.
"""

from __future__ import annotations

from ctistudio.errors import CtiStudioError, InvalidInput, NotFound


class SigmaError(CtiStudioError):
    """Base class of the Sigma services' own failures."""


class ConversionFailed(SigmaError):
    """pySigma could not convert a rule for the requested target."""


class CorpusError(SigmaError):
    """The rules folder or repository could not be read or fetched."""


class SigmaIndexInvalid(SigmaError):
    """The similarity index on disk is corrupt or was written by another format version."""


class SigmaIndexMissing(NotFound):
    """No similarity index has been built at the expected path."""


class SigmaRuleUnreadable(InvalidInput):
    """The input could not be read as a Sigma rule (YAML syntax, not a mapping, no detection)."""
