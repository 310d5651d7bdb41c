"""The ``videoqa_mc`` task."""
from lavis_vila.tasks.videoqa_mc import VideoQAMultipleChoiceTask

__all__ = ["VideoQAMultipleChoiceTask"]
