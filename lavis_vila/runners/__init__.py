"""The ``vila_runner`` runner. Names are re-exported lazily (``lavis_vila.lazy``)."""
from lavis_vila.lazy import exports

__all__ = ["VilaRunner"]
__getattr__, __dir__ = exports(__name__, {"VilaRunner": "lavis_vila.runners.vila_runner"})
