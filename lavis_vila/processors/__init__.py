"""Processors registered with LAVIS: ``vila_video_train``, ``vila_video_eval``, ``vila_question``."""
from lavis_vila.processors.text import QuestionProcessor
from lavis_vila.processors.video import (
    VideoDecodeError,
    VideoEvalProcessor,
    VideoTrainProcessor,
    segment_frame_indices,
)

__all__ = [
    "QuestionProcessor",
    "VideoDecodeError",
    "VideoEvalProcessor",
    "VideoTrainProcessor",
    "segment_frame_indices",
]
