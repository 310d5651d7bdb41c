"""The ``videoqa_mc`` task. Names are re-exported lazily (``lavis_vila.lazy``)."""
from lavis_vila.lazy import exports

__all__ = ["VideoQAMultipleChoiceTask"]
__getattr__, __dir__ = exports(__name__, {"VideoQAMultipleChoiceTask": "lavis_vila.tasks.videoqa_mc"})
