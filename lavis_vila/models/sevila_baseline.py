"""``sevila_baseline``: SeViLA-style keyframe localization on the same backbone, for comparison.

    ViT(all T frames) -> localizer Q-Former + LLM score every frame by the logit of "yes" to
    SeViLA's localizer question -> top-K frames, put back in time order -> answerer
    Q-Former(K frames) -> LLM

The answerer path is exactly ``vila``'s student path, so a side-by-side run isolates what frame
selection costs and buys. Localizer slots use SeViLA's checkpoint names (``Qformer_loc``,
``query_tokens_loc``, ``t5_proj_loc``), so its released weights load without renaming.

Differences from SeViLA: the Q-Formers are InstructBLIP's (they read the prompt), and the
localizer question lists the options as "Option A: ..." instead of "Options: (...)"; there are
no "Frame i:" text prefixes. ``forward`` trains the answerer on the localizer's keyframes
(SeViLA's answerer fine-tuning); the localizer itself stays frozen.
"""
import copy
from functools import cached_property

import torch

from lavis_vila.prompts import localizer_prompt
from lavis_vila.models.paths import model_config_paths
from lavis_vila.models.video_instruct import FrameChoice, VideoInstructModel, freeze
from lavis_vila.registry import register_model


@register_model("sevila_baseline")
class SeViLABaseline(VideoInstructModel):
    """Usage: ``load_model_and_preprocess("sevila_baseline", "tiny", is_eval=True)``."""

    PRETRAINED_MODEL_CONFIG_DICT = model_config_paths("sevila_baseline")

    def __init__(self, *, num_candidate_frames: int = 32, num_selected_frames: int = 4, empty: bool = False,
                 **backbone_kwargs):
        super().__init__(empty=empty, **backbone_kwargs)
        self.num_candidate_frames = num_candidate_frames
        self.num_selected_frames = num_selected_frames
        self.Qformer_loc = copy.deepcopy(self.Qformer)
        self.query_tokens_loc = copy.deepcopy(self.query_tokens)
        self.t5_proj_loc = copy.deepcopy(self.t5_proj)
        for localizer_part in (self.Qformer_loc, self.t5_proj_loc):
            freeze(localizer_part)
        self.query_tokens_loc.requires_grad = False

    def frozen_modules(self):
        return super().frozen_modules() + [self.Qformer_loc]

    @cached_property
    def yes_token_id(self) -> int:
        ids = self.t5_tokenizer("yes", add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise ValueError(f"The T5 tokenizer splits 'yes' into {ids}; the localizer needs one token")
        return ids[0]

    def frame_relevance(self, frames: torch.Tensor, qa_input) -> torch.Tensor:
        """(B, T, N, C) -> (B, T) logit of "yes" per frame, each frame judged on its own."""
        batch_size, num_frames = frames.shape[:2]
        loc_input = [localizer_prompt(q) for q in qa_input]
        instruction = self.tokenize_instruction(loc_input)
        tokens = self.frame_tokens(frames, instruction, self.Qformer_loc, self.query_tokens_loc, self.t5_proj_loc)
        per_frame = tokens.reshape(batch_size * num_frames, -1, tokens.shape[-1])  # (B*T, Q, D)
        per_frame_text = [text for text in loc_input for _ in range(num_frames)]
        logits = self.next_token_logits(per_frame, per_frame_text, self.answer_prefix_ids[:1])  # (B*T, V)
        return logits[:, self.yes_token_id].reshape(batch_size, num_frames)

    def select_frames(self, frames: torch.Tensor, samples: dict, temperature: float) -> FrameChoice:
        """Top-K frames by relevance, in time order: (B, T, N, C) -> (B, K, N, C). The localizer is
        frozen: ``forward`` trains the answerer on its keyframes (SeViLA's answerer fine-tuning)."""
        with torch.no_grad():
            relevance = self.frame_relevance(frames, samples["qa_input"])  # (B, T)
        indices = relevance.topk(self.num_selected_frames, dim=-1).indices.sort(dim=-1).values  # (B, K)
        selected = frames[torch.arange(frames.shape[0], device=frames.device)[:, None], indices]
        return FrameChoice(selected, indices)

    def load_checkpoint(self, url_or_filename: str, config_key: str = "checkpoint", partial: bool = False):
        """A checkpoint without localizer weights (BLIP-2, InstructBLIP, vila_uniform) initialises
        the localizer as a copy of its answerer, as SeViLA initialises it from BLIP-2's Q-Former."""
        result = super().load_checkpoint(url_or_filename, config_key, partial)
        if not any(key.startswith(("Qformer_loc.", "query_tokens_loc", "t5_proj_loc.")) for key in
                   set(self.state_dict()) - set(result.missing_keys)):
            self.Qformer_loc.load_state_dict(self.Qformer.state_dict())
            self.query_tokens_loc.data.copy_(self.query_tokens.data)
            self.t5_proj_loc.load_state_dict(self.t5_proj.state_dict())
        return result
