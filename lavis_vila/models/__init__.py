"""Models registered with LAVIS: ``vila``, ``vila_lora``, ``vila_uniform``, ``sevila_baseline``.

Names are re-exported lazily (``lavis_vila.lazy``): importing this package imports no model.
"""
from lavis_vila.lazy import exports

__all__ = ["SeViLABaseline", "ViLA", "ViLALoRA", "VilaUniform", "build_model", "build_model_from_checkpoint"]
__getattr__, __dir__ = exports(__name__, {
    "SeViLABaseline": "lavis_vila.models.sevila_baseline", "ViLA": "lavis_vila.models.vila",
    "ViLALoRA": "lavis_vila.models.vila_lora", "VilaUniform": "lavis_vila.models.vila_uniform",
    "build_model": "lavis_vila.models.build", "build_model_from_checkpoint": "lavis_vila.models.build",
})
