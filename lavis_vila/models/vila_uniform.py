"""``vila_uniform``: InstructBLIP over uniformly sampled frames, no selection, no distillation.

This is the paper's stage-1 model (``vila_ori`` in the official code): trained on T frames it
is the teacher, trained on K frames it is the student init and the "BLIP-2 (K frames)"
baseline. It answers from every frame it is given: the base class's student path with its
default ``select_frames``.
"""
from lavis_vila.models.paths import model_config_paths
from lavis_vila.models.video_instruct import VideoInstructModel
from lavis_vila.registry import register_model


@register_model("vila_uniform")
class VilaUniform(VideoInstructModel):
    """Usage: ``load_model_and_preprocess("vila_uniform", "tiny", is_eval=True)``."""

    PRETRAINED_MODEL_CONFIG_DICT = model_config_paths("vila_uniform")
