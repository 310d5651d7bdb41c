"""``vila_uniform``: InstructBLIP over uniformly sampled frames, no selection, no distillation.

This is the paper's stage-1 model (``vila_ori`` in the official code): trained on T frames it
is the teacher, trained on K frames it is the student init and the "BLIP-2 (K frames)"
baseline. It answers from every frame it is given.
"""
import torch

from lavis_vila.models.paths import model_config_paths
from lavis_vila.models.video_instruct import VideoInstructModel, check_batch
from lavis_vila.registry import register_model


@register_model("vila_uniform")
class VilaUniform(VideoInstructModel):
    """Usage: ``load_model_and_preprocess("vila_uniform", "tiny", is_eval=True)``."""

    PRETRAINED_MODEL_CONFIG_DICT = model_config_paths("vila_uniform")

    def forward(self, samples):
        check_batch(samples)
        frames = self.encode_frames(samples["video"])  # (B, F, N, C)
        instruction = self.tokenize_instruction(samples["qa_input"])
        visual_tokens = self.frame_tokens(frames, instruction, self.Qformer, self.query_tokens, self.t5_proj)
        loss = self.answer_loss(visual_tokens, samples["qa_input"], samples["qa_output"])
        return {"loss": loss, "loss_vqa": loss}

    def answer_scores(self, samples):
        """Every given frame answers: ``frame_idx`` is 0..F-1."""
        frames = self.encode_frames(samples["video"])
        instruction = self.tokenize_instruction(samples["qa_input"])
        visual_tokens = self.frame_tokens(frames, instruction, self.Qformer, self.query_tokens, self.t5_proj)
        scores = self.option_scores(visual_tokens, samples["qa_input"], samples["num_option"])
        batch_size, num_frames = frames.shape[:2]
        return scores, torch.arange(num_frames, device=scores.device).expand(batch_size, -1)
