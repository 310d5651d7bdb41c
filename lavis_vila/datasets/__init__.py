"""Multiple-choice video-QA datasets and their LAVIS builders."""
from lavis_vila.annotations import AnnotationError
from lavis_vila.datasets.builders import (
    How2QABuilder,
    KeyframeQABuilder,
    MCVideoQABuilder,
    NExTQABuilder,
    STARBuilder,
    TVQABuilder,
    VLEPBuilder,
)
from lavis_vila.datasets.mc_video_qa import MCVideoQADataset

__all__ = [
    "AnnotationError", "How2QABuilder", "KeyframeQABuilder", "MCVideoQABuilder", "MCVideoQADataset",
    "NExTQABuilder", "STARBuilder", "TVQABuilder", "VLEPBuilder",
]
