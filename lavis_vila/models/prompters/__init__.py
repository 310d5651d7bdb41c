"""Frame-Prompters: each keeps K of T candidate frames (``model.frame_prompter`` picks one).

- ``segment``: the paper's design (a), one frame per segment (the default).
- ``free_form``: our reading of the paper's design (b) (a per-frame keep-or-drop choice): exactly K
  frames anywhere, by Gumbel top-K.
- ``question_aware``: ours, one frame per segment scored with the question.

Names are re-exported lazily (``lavis_vila.lazy``).
"""
from lavis_vila.lazy import exports

__all__ = ["PROMPTERS", "build_prompter", "FrameSelection", "Prompter", "FreeFormPrompter", "QuestionAwarePrompter",
           "SegmentPrompter"]
__getattr__, __dir__ = exports(__name__, {
    "PROMPTERS": "lavis_vila.models.prompters.build", "build_prompter": "lavis_vila.models.prompters.build",
    "FrameSelection": "lavis_vila.models.prompters.base", "Prompter": "lavis_vila.models.prompters.base",
    "FreeFormPrompter": "lavis_vila.models.prompters.free_form",
    "QuestionAwarePrompter": "lavis_vila.models.prompters.question_aware",
    "SegmentPrompter": "lavis_vila.models.prompters.segment",
})
