"""Multiple-choice video-QA datasets and their LAVIS builders (``nextqa``, ``star``, ``how2qa``,
``tvqa``, ``vlep``, ``custom``, ``keyframe_qa``). Names are re-exported lazily (``lavis_vila.lazy``)."""
from lavis_vila.lazy import exports

BUILDERS = "lavis_vila.datasets.builders"
__all__ = ["AnnotationError", "CustomBuilder", "How2QABuilder", "KeyframeQABuilder", "MCVideoQABuilder",
           "MCVideoQADataset", "NExTQABuilder", "STARBuilder", "TVQABuilder", "VLEPBuilder"]
__getattr__, __dir__ = exports(__name__, {
    "AnnotationError": "lavis_vila.datasets.annotations", "MCVideoQADataset": "lavis_vila.datasets.mc_video_qa",
    **dict.fromkeys(["CustomBuilder", "How2QABuilder", "KeyframeQABuilder", "MCVideoQABuilder", "NExTQABuilder",
                     "STARBuilder", "TVQABuilder", "VLEPBuilder"], BUILDERS),
})
