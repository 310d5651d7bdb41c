"""The ``vila_runner`` runner."""
from lavis_vila.runners.vila_runner import VilaRunner

__all__ = ["VilaRunner"]
