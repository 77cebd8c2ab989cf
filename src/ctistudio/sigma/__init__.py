"""Sigma tooling: validation (pySigma, ATT&CK offline), conversion to SIEM queries, similarity to SigmaHQ.

Public API (see docs/sigma.md):

- :func:`validate_rule` (YAML text → :class:`ValidationResult` with every issue)
- :func:`convert` (rule → :class:`Conversion` for ``splunk``, ``elastic``, ``esql``, ``eql``)
- :class:`ctistudio.sigma.similarity.SimilarityIndex` (build/load/save, ``similar`` → verdict and matches)
- :mod:`ctistudio.sigma.corpus` (read a rules folder, clone SigmaHQ with git)

pySigma is imported only when a function needs it, so importing this package stays cheap.
"""

from ctistudio.sigma.convert import TARGETS, Conversion, convert
from ctistudio.sigma.validate import ValidationIssue, ValidationResult, validate_rule

__all__ = ["TARGETS", "Conversion", "ValidationIssue", "ValidationResult", "convert", "validate_rule"]
