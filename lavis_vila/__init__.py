"""ViLA (ECCV 2024) for LAVIS: ``import lavis_vila`` registers every class with LAVIS's registry.

Registered names: models ``vila``, ``vila_uniform``; processors ``vila_video_train``,
``vila_video_eval``, ``vila_question``; builders ``nextqa``, ``star``, ``how2qa``, ``tvqa``,
``vlep``, ``keyframe_qa``; task ``videoqa_mc``; runner ``vila_runner``.
"""
import lavis  # noqa: F401  (LAVIS registers its own classes first)

from lavis_vila import datasets, models, processors, runners, tasks  # noqa: F401

__version__ = "0.1.0"
