"""``vila``: Frame-Prompter + QFormer-Distiller on the InstructBLIP video backbone (ViLA, ECCV 2024).

    ViT(all T frames, once) -> Frame-Prompter picks K -> student Q-Former(K frames) -> T5
                            \\-> teacher Q-Former(T frames, no_grad) -> distillation target

Training loss: L_vqa + distill_weight * MSE(decoder(student tokens), teacher tokens).
At inference only the student path runs.

Paper vs official code (each difference has a flag; the paper is the default):
- teacher: a separate frozen Q-Former (``Qformer_T``) in the paper; the official code runs the
  teacher through the student's own Q-Former (``teacher_shares_student_qformer: True``).
- evaluation selection: deterministic argmax here; the official code adds Gumbel noise at test
  time (``eval_gumbel_noise: True``).
"""
import copy

import torch

from lavis_vila.models.backbones import device_context
from lavis_vila.models.distiller import QFormerDistiller
from lavis_vila.models.frame_prompter import FramePrompter
from lavis_vila.models.paths import model_config_paths
from lavis_vila.models.video_instruct import VideoInstructModel, check_batch, freeze
from lavis_vila.registry import register_model


@register_model("vila")
class ViLA(VideoInstructModel):
    """Usage: ``load_model_and_preprocess("vila", "tiny", is_eval=True)``.

    Args (beyond the backbone's):
        num_candidate_frames: T, frames encoded by the ViT (SeViLA/official ``n_frms``).
        num_selected_frames: K, frames the student sees (official ``frame_num``).
        distill_weight: lambda of the distillation term (0 turns the teacher off).
        teacher_shares_student_qformer: official-code teacher (see module docstring).
        eval_gumbel_noise: official-code sampled selection at evaluation.
        eval_temperature: Gumbel temperature for that sampled selection.
    """

    PRETRAINED_MODEL_CONFIG_DICT = model_config_paths("vila")

    def __init__(
        self,
        *,
        num_candidate_frames: int = 32,
        num_selected_frames: int = 4,
        distill_weight: float = 0.01,
        teacher_shares_student_qformer: bool = False,
        eval_gumbel_noise: bool = False,
        eval_temperature: float = 0.01,
        empty: bool = False,
        **backbone_kwargs,
    ):
        super().__init__(empty=empty, **backbone_kwargs)
        self.num_candidate_frames = num_candidate_frames
        self.num_selected_frames = num_selected_frames
        self.distill_weight = distill_weight
        self.teacher_shares_student_qformer = teacher_shares_student_qformer
        self.eval_gumbel_noise = eval_gumbel_noise
        self.eval_temperature = eval_temperature

        num_tokens = self.visual_encoder.patch_embed.num_patches + 1
        num_queries = self.query_tokens.shape[1]
        with device_context(empty):
            self.frame_prompter = FramePrompter(
                num_tokens=num_tokens,
                num_candidate_frames=num_candidate_frames,
                num_selected_frames=num_selected_frames,
            )
            self.distiller = QFormerDistiller(
                student_tokens=num_queries * num_selected_frames,
                teacher_tokens=num_queries * num_candidate_frames,
            )
        # Teacher slots, filled from the stage-1 T-frame model by tools.merge_weights.
        if not teacher_shares_student_qformer:
            self.Qformer_T = copy.deepcopy(self.Qformer)
            freeze(self.Qformer_T)
        self.query_tokens_T = copy.deepcopy(self.query_tokens)
        self.query_tokens_T.requires_grad = False
        self.t5_proj_T = copy.deepcopy(self.t5_proj)
        freeze(self.t5_proj_T)

    @property
    def teacher_qformer(self):
        return self.Qformer if self.teacher_shares_student_qformer else self.Qformer_T

    def frozen_modules(self):
        frozen = super().frozen_modules()
        return frozen if self.teacher_shares_student_qformer else frozen + [self.Qformer_T]

    def select_frames(self, frames: torch.Tensor, temperature: float = 1.0):
        """(B, T, N, C) -> selected (B, K, N, C) and the ``FrameSelection``."""
        if frames.shape[1] != self.num_candidate_frames:
            raise ValueError(
                f"vila expects {self.num_candidate_frames} candidate frames per video, got "
                f"{frames.shape[1]}; set the video processor's num_frames to num_candidate_frames"
            )
        sample = self.training or self.eval_gumbel_noise
        selection = self.frame_prompter(
            frames, temperature=temperature if self.training else self.eval_temperature, sample=sample
        )
        return self.frame_prompter.gather(frames, selection), selection

    def forward(self, samples, temperature: float = 1.0):
        """Loss dict; ``temperature`` is the Gumbel temperature, scheduled by the task."""
        check_batch(samples)
        frames = self.encode_frames(samples["video"])  # (B, T, N, C)
        selected, _ = self.select_frames(frames, temperature)  # (B, K, N, C)
        instruction = self.tokenize_instruction(samples["qa_input"])
        student = self.frame_tokens(selected, instruction, self.Qformer, self.query_tokens, self.t5_proj)
        loss_vqa = self.answer_loss(student, samples["qa_input"], samples["qa_output"])
        if not (self.training and self.distill_weight > 0):
            return {"loss": loss_vqa, "loss_vqa": loss_vqa}

        with torch.no_grad():
            teacher = self.frame_tokens(
                frames, instruction, self.teacher_qformer, self.query_tokens_T, self.t5_proj_T
            )  # (B, T*Q, D)
        loss_distill = self.distiller(student, teacher)
        return {
            "loss": loss_vqa + self.distill_weight * loss_distill,
            "loss_vqa": loss_vqa,
            "loss_distill": loss_distill,
        }

    def answer_scores(self, samples):
        """Student path only: K prompted frames answer; ``frame_idx`` is the prompter's choice."""
        frames = self.encode_frames(samples["video"])
        selected, selection = self.select_frames(frames)
        instruction = self.tokenize_instruction(samples["qa_input"])
        student = self.frame_tokens(selected, instruction, self.Qformer, self.query_tokens, self.t5_proj)
        scores = self.option_scores(student, samples["qa_input"], samples["num_option"])
        return scores, selection.frame_indices
