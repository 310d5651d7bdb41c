"""Processors registered with LAVIS: ``vila_video_train``, ``vila_video_eval``, ``vila_question``.
Names are re-exported lazily (``lavis_vila.lazy``)."""
from lavis_vila.lazy import exports

VIDEO = "lavis_vila.processors.video"
__all__ = ["QuestionProcessor", "VideoDecodeError", "VideoEvalProcessor", "VideoTrainProcessor", "segment_frame_indices"]
__getattr__, __dir__ = exports(__name__, {
    "QuestionProcessor": "lavis_vila.processors.text",
    **dict.fromkeys(["VideoDecodeError", "VideoEvalProcessor", "VideoTrainProcessor", "segment_frame_indices"], VIDEO),
})
