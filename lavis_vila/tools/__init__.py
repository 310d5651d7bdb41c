"""Command-line tools: python -m lavis_vila.tools.<name>."""
from lavis_vila.cli import quiet_third_party_warnings

quiet_third_party_warnings()  # before any tool imports torch or LAVIS
