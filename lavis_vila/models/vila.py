"""``vila``: Frame-Prompter + QFormer-Distiller on the InstructBLIP video backbone (ViLA, ECCV 2024).

    ViT(all T frames, once) -> Frame-Prompter picks K -> student Q-Former(K frames) -> T5
                            \\-> teacher Q-Former(T frames, no_grad) -> distillation target

Training loss: L_vqa + distill_weight * MSE(decoder(student tokens), teacher tokens).
At inference only the student path runs.

Paper vs official code: each difference is one flag, listed with its default and what decided
it in the faithfulness table (docs/faithfulness.md). Here: ``teacher_shares_student_qformer`` (the paper's
separate teacher by default), ``eval_gumbel_noise`` and ``prompter_gradient`` (the official
code's gradient through the selected mask entries only, by default). ``frame_prompter`` picks the
prompter (``lavis_vila.models.prompters``): the paper's ``segment`` by default.
"""
import copy
from typing import Optional

import torch

from lavis_vila.checkpoints import parameter_groups
from lavis_vila.models.backbones import device_context
from lavis_vila.models.distiller import QFormerDistiller
from lavis_vila.models.prompters.build import build_prompter
from lavis_vila.models.paths import model_config_paths
from lavis_vila.models.stage_timing import PROMPTER, stage
from lavis_vila.models.video_instruct import FrameChoice, StudentPass, VideoInstructModel, freeze
from lavis_vila.registry import register_model
from lavis_vila.stage_weights import TEACHER_SLOTS, renamed


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
        prompter_gradient: which mask entries the straight-through gradient reaches:
            ``selected`` (official code) or ``all`` (see ``Prompter.gather``).
        frame_prompter: ``segment`` (the paper's design (a), default), ``free_form`` (our reading of
            design (b): Gumbel top-K) or ``question_aware`` (ours); see ``lavis_vila.models.prompters``.
        prompter_options: that prompter's own arguments, e.g. ``{scorer: frame}`` for ``segment``.
        prompter_layer: the ViT block L whose output the prompter reads; null (default, the
            paper) reads the last. At inference with L set, the ViT runs L blocks on all T
            frames and the rest only on the K chosen ones (``encode_and_select``).
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
        prompter_gradient: str = "selected",
        frame_prompter: str = "segment",
        prompter_options: Optional[dict] = None,
        prompter_layer: Optional[int] = None,
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
        depth = len(self.visual_encoder.blocks)
        if prompter_layer is not None and not 1 <= prompter_layer < depth:
            raise ValueError(f"prompter_layer must be 1 to {depth - 1} for a {depth}-block ViT (null: the last block), "
                             f"got {prompter_layer}")
        self.prompter_layer = prompter_layer

        num_tokens = self.visual_encoder.patch_embed.num_patches + 1
        num_queries = self.query_tokens.shape[1]
        with device_context(empty):
            self.frame_prompter = build_prompter(
                frame_prompter,
                dict(prompter_options or {}),
                num_tokens=num_tokens,
                vision_width=self.visual_encoder.num_features,
                num_candidate_frames=num_candidate_frames,
                num_selected_frames=num_selected_frames,
                question_dim=self.Qformer.config.hidden_size,
                gradient=prompter_gradient,
            )
            if self.frame_prompter.reads_question and not self.qformer_text_input:
                raise ValueError(f"frame_prompter {frame_prompter!r} reads the question through the Q-Former's word "
                                 f"embeddings, which qformer_text_input: False removes")
            self.distiller = QFormerDistiller(
                student_tokens=num_queries * num_selected_frames,
                teacher_tokens=num_queries * num_candidate_frames,
            )
        # Teacher slots (stage_weights.TEACHER_SLOTS), filled from the stage-1 T-frame model by tools.merge_weights.
        if not teacher_shares_student_qformer:
            self.Qformer_T = copy.deepcopy(self.Qformer)
            freeze(self.Qformer_T)
        self.query_tokens_T = copy.deepcopy(self.query_tokens)
        self.query_tokens_T.requires_grad = False
        self.t5_proj_T = copy.deepcopy(self.t5_proj)
        freeze(self.t5_proj_T)
        self.unfilled_teacher = []  # teacher parameters a loaded checkpoint left at their init

    def teacher_parameter_names(self) -> list:
        """Teacher parameters whose student counterpart trains: what stage 1 learns and
        ``merge_weights`` carries (not, for example, the Q-Former's unused language-model head)."""
        trainable = [name for name, param in self.named_parameters() if param.requires_grad]
        teacher_slots_of_trainable = set(renamed(dict.fromkeys(trainable), TEACHER_SLOTS))
        return [name for name, _ in self.named_parameters() if name in teacher_slots_of_trainable]

    def load_checkpoint(self, url_or_filename: str, config_key: str = "checkpoint", partial: bool = False):
        """Also records which teacher slots the checkpoint left unfilled: distilling from them would
        distil from a random teacher, so training refuses to (see ``losses``)."""
        result = super().load_checkpoint(url_or_filename, config_key, partial)
        missing = set(result.missing_keys)
        self.unfilled_teacher = [name for name in self.teacher_parameter_names() if name in missing]
        self.teacher_source = f"{config_key} '{url_or_filename}'"
        return result

    @property
    def teacher_qformer(self):
        return self.Qformer if self.teacher_shares_student_qformer else self.Qformer_T

    def frozen_modules(self):
        frozen = super().frozen_modules()
        return frozen if self.teacher_shares_student_qformer else frozen + [self.Qformer_T]

    def select_frames(self, frames: torch.Tensor, samples: dict, temperature: float) -> FrameChoice:
        """The Frame-Prompter keeps K of the T frames (B, T, N, C) -> (B, K, N, C)."""
        return self.keep_selected(frames, self.select(frames, samples, temperature))

    def keep_selected(self, frames: torch.Tensor, selection) -> FrameChoice:
        return FrameChoice(self.frame_prompter.gather(frames, selection), selection.frame_indices, selection)

    def select(self, prompter_input: torch.Tensor, samples: dict, temperature: float):
        """The Frame-Prompter's selection from features (B, T, N, C): sampled in training (or with
        ``eval_gumbel_noise``), else deterministic."""
        with stage(PROMPTER):
            return self.frame_prompter(
                prompter_input,
                temperature=temperature if self.training else self.eval_temperature,
                sample=self.training or self.eval_gumbel_noise,
                question=self.question_embedding(samples["qa_input"]) if self.frame_prompter.reads_question else None,
            )

    def question_embedding(self, qa_input) -> torch.Tensor:
        """(B, D) the mean of the Q-Former's word embeddings over the instruction's tokens, without
        gradient: what a question-reading prompter reads."""
        instruction = self.tokenize_instruction(qa_input)
        with torch.no_grad():
            words = self.Qformer.bert.embeddings.word_embeddings(instruction.input_ids)  # (B, L, D)
        mask = instruction.attention_mask[..., None].to(words.dtype)
        return (words * mask).sum(1) / mask.sum(1)

    def encode_and_select(self, samples: dict, temperature: float):
        """With ``prompter_layer`` L the prompter reads ``ln_vision`` of block L. Training runs the
        whole ViT on all T frames (the teacher needs them) and the mask gathers the final features;
        inference continues blocks L.. on the K chosen frames only, and returns no all-frame features."""
        if self.prompter_layer is None:
            return super().encode_and_select(samples, temperature)
        block_l = self.vit_features(samples["video"], 0, self.prompter_layer)  # (B, T, N, C)
        prompter_input = self.vision_features(block_l)
        if self.training:
            frames = self.vision_features(self.vit_features(block_l, self.prompter_layer))  # (B, T, N, C)
            return frames, self.keep_selected(frames, self.select(prompter_input, samples, temperature))
        selection = self.select(prompter_input, samples, temperature)
        index = selection.frame_indices[..., None, None].expand(-1, -1, *block_l.shape[2:])  # (B, K, N, C)
        chosen = self.vision_features(self.vit_features(block_l.gather(1, index), self.prompter_layer))
        return None, FrameChoice(chosen, selection.frame_indices, selection)

    def losses(self, student: StudentPass, samples: dict) -> dict:
        """L_vqa + distill_weight * MSE(decoder(student tokens), teacher tokens) in training."""
        losses = super().losses(student, samples)
        if not (self.training and self.distill_weight > 0):
            return losses
        if self.unfilled_teacher:
            raise ValueError(
                f"distill_weight is {self.distill_weight} but {self.teacher_source} leaves the teacher slots unfilled "
                f"({parameter_groups(self.unfilled_teacher)}), so ViLA would distil from a random teacher. Build the "
                f"stage-2 initialisation with python -m lavis_vila.tools.merge_weights --teacher <T-frame checkpoint> "
                f"--student <K-frame checkpoint>, or set model.distill_weight: 0")
        with torch.no_grad():
            teacher = self.frame_tokens(
                student.frames, student.instruction, self.teacher_qformer, self.query_tokens_T, self.t5_proj_T
            )  # (B, T*Q, D)
        loss_distill = self.distiller(student.tokens, teacher)
        return {**losses, "loss": losses["loss"] + self.distill_weight * loss_distill, "loss_distill": loss_distill}
