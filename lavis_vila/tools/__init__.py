"""Command-line tools: python -m lavis_vila.tools.<name>."""
