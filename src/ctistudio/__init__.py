"""ctistudio: a local-first cyber-threat-intelligence workbench."""

__version__ = "0.1.0"
