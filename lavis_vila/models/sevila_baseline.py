"""``sevila_baseline``: SeViLA-style keyframe localization on the same backbone, for comparison.

    ViT(all T frames) -> localizer Q-Former + LLM score every frame by the logit of "yes" to
    SeViLA's localizer question -> top-K frames, put back in time order -> answerer
    Q-Former(K frames) -> LLM

Two variants, by model type:
- ``flant5xl``/``flant5xxl``/``tiny``: the same-backbone speed baseline. The answerer path is
  exactly ``vila``'s student path (InstructBLIP Q-Formers that read the prompt), so a side-by-side
  run isolates what frame selection costs and buys.
- ``sevila_flant5xl``/``sevila_tiny``: SeViLA's architecture, each difference one key:
  ``qformer_text_input: False`` (BLIP-2 Q-Formers, no text path), ``frame_prefixes: True``
  ("Frame i: " before each answer frame's tokens, "Frame: " before a frame judged alone),
  ``separate_ln_vision_loc: True`` (the localizer's own LayerNorm) and ``localizer_prompt:
  sevila`` (its "Options: (...)" question). Localizer slots use SeViLA's checkpoint names
  (``Qformer_loc``, ``query_tokens_loc``, ``t5_proj_loc``, ``ln_vision_loc``), so its released
  weights load without renaming.

Training, as SeViLA's two steps (one config key, ``train_localizer``, picks the objective:
``lavis_vila.models.sevila_objectives``): ``True``, self-refinement of the localizer on the frozen
answerer's pseudo-labels; ``False`` (default), the answerer trains on the frozen localizer's keyframes.

Three more choices follow SeViLA's code by default, each one key:
- ``t5_truncation_side: right``: a T5 prompt longer than ``max_txt_len`` loses its end (SeViLA's
  tokenizer; ours elsewhere cut the start). ``sevila_flant5xl`` also sets SeViLA's
  ``max_txt_len: 77`` and ``truncate_eval_prompt: True``, so training, evaluation and
  pseudo-labelling all read at most 77 prompt tokens.
- ``reset_localizer_qformer: True``: before self-refinement from a ``finetuned`` checkpoint, the
  localizer's Q-Former is reset to ``pretrained``'s (BLIP-2's), as SeViLA's ``load_qformer_loc``.
- ``frozen_branch_dropout: True``: the frozen Q-Former (the answerer in refinement, the localizer in
  fine-tuning) follows ``train()``, so its dropout is on in training, as in SeViLA's code.
"""
import copy
import logging
from functools import cached_property

import torch

from lavis_vila.checkpoints import CheckpointError, load_into, load_state_dict_file
from lavis_vila.models.paths import model_config_paths
from lavis_vila.models.sevila_objectives import KEYFRAME, objective
from lavis_vila.models.video_instruct import FrameChoice, VideoInstructModel, check_batch
from lavis_vila.prompts import localizer_prompt
from lavis_vila.registry import register_model
from lavis_vila.stage_weights import LOCALIZER_PREFIXES, LOCALIZER_SLOTS, renamed


def qa_localizer_questions(samples: dict) -> list:
    """``localizer_prompt: qa``: built from each QA prompt (``prompts.localizer_prompt``)."""
    return [localizer_prompt(q) for q in samples["qa_input"]]


def sevila_localizer_questions(samples: dict) -> list:
    """``localizer_prompt: sevila``: SeViLA's own string with its "Options: (...)" hint, which the
    dataset gives as ``loc_input``."""
    if "loc_input" not in samples:
        raise ValueError("localizer_prompt: sevila reads samples['loc_input'] (SeViLA's localizer question, "
                         "which MCVideoQADataset gives); this batch has none")
    return list(samples["loc_input"])


LOCALIZER_QUESTIONS = {"qa": qa_localizer_questions, "sevila": sevila_localizer_questions}
TRUNCATION_SIDES = ("left", "right")
BLIP2_QFORMER_AS_LOCALIZER = {"Qformer.": "Qformer_loc."}  # what SeViLA's qformer_loc.pth holds


@register_model("sevila_baseline")
class SeViLABaseline(VideoInstructModel):
    """Usage: ``load_model_and_preprocess("sevila_baseline", "tiny", is_eval=True)``; model type
    ``sevila_flant5xl`` for SeViLA's architecture and released weights."""

    PRETRAINED_MODEL_CONFIG_DICT = model_config_paths("sevila_baseline", ("sevila_flant5xl", "sevila_tiny"))

    def __init__(self, *, num_candidate_frames: int = 32, num_selected_frames: int = 4, train_localizer: bool = False,
                 frame_prefixes: bool = False, separate_ln_vision_loc: bool = False, localizer_prompt: str = "qa",
                 t5_truncation_side: str = "right", reset_localizer_qformer: bool = True,
                 frozen_branch_dropout: bool = True, empty: bool = False, **backbone_kwargs):
        super().__init__(empty=empty, **backbone_kwargs)
        if localizer_prompt not in LOCALIZER_QUESTIONS:
            raise ValueError(f"localizer_prompt must be one of {tuple(LOCALIZER_QUESTIONS)}, got {localizer_prompt!r}")
        if t5_truncation_side not in TRUNCATION_SIDES:
            raise ValueError(f"t5_truncation_side must be one of {TRUNCATION_SIDES}, got {t5_truncation_side!r}")
        if self.t5_tokenizer is not None:  # this model's own tokenizer (backbones builds one per model)
            self.t5_tokenizer.truncation_side = t5_truncation_side
        self.resets_localizer_qformer = reset_localizer_qformer and train_localizer
        self.frozen_branch_dropout = frozen_branch_dropout
        self.num_candidate_frames = num_candidate_frames
        self.num_selected_frames = num_selected_frames
        self.objective = objective(train_localizer)
        self.localizer_questions = LOCALIZER_QUESTIONS[localizer_prompt]
        self.answer_frame_prefix, self.single_frame_prefix = ("Frame {}: ", "Frame: ") if frame_prefixes else (None, None)
        self.Qformer_loc = copy.deepcopy(self.Qformer)
        self.query_tokens_loc = copy.deepcopy(self.query_tokens)
        self.t5_proj_loc = copy.deepcopy(self.t5_proj)
        self.ln_vision_loc = copy.deepcopy(self.ln_vision) if separate_ln_vision_loc else None
        for part in self.objective.frozen_parts(self):
            part.requires_grad_(False)

    def answerer_parts(self) -> list:
        return [self.ln_vision, self.Qformer, self.query_tokens, self.t5_proj]

    def localizer_parts(self) -> list:
        return [self.Qformer_loc, self.query_tokens_loc, self.t5_proj_loc] + ([self.ln_vision_loc] if self.has_ln_vision_loc else [])

    @property
    def has_ln_vision_loc(self) -> bool:
        return self.ln_vision_loc is not None

    def localizer_features(self, vit_tokens: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """What the localizer reads: ``ln_vision_loc`` of the raw ViT tokens (B, T, N, C), or the
        answerer's ``frames`` (``ln_vision`` of them) where there is no separate one."""
        return self.vision_features(vit_tokens, self.ln_vision_loc) if self.has_ln_vision_loc else frames

    def encode_and_select(self, samples: dict, temperature: float):
        """One ViT pass; the answerer reads ``ln_vision`` of it, the localizer its own features."""
        vit_tokens = self.vit_features(samples["video"])  # (B, T, N, C)
        frames = self.vision_features(vit_tokens)
        return frames, self.keyframes(frames, self.localizer_features(vit_tokens, frames), samples)

    def frozen_modules(self):
        return super().frozen_modules() + ([] if self.frozen_branch_dropout else [self.objective.frozen_qformer(self)])

    @cached_property
    def yes_token_id(self) -> int:
        ids = self.t5_tokenizer(KEYFRAME, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise ValueError(f"The T5 tokenizer splits '{KEYFRAME}' into {ids}; the localizer needs one token")
        return ids[0]

    def localizer_tokens(self, frames: torch.Tensor, samples: dict):
        """Each frame alone through the localizer: features (B, T, N, C) -> LLM-space tokens
        (B*T, P+Q, D) and the localizer question of each (B*T texts, each video's repeated T times)."""
        batch_size, num_frames = frames.shape[:2]
        loc_input = self.localizer_questions(samples)
        instruction = self.tokenize_instruction(loc_input)
        tokens = self.frame_tokens(frames, instruction, self.Qformer_loc, self.query_tokens_loc, self.t5_proj_loc,
                                   self.single_frame_prefix)
        per_frame = tokens.reshape(batch_size * num_frames, -1, tokens.shape[-1])  # (B*T, P+Q, D)
        return per_frame, [text for text in loc_input for _ in range(num_frames)]

    def frame_relevance(self, frames: torch.Tensor, samples: dict) -> torch.Tensor:
        """(B, T, N, C) -> (B, T) logit of "yes" per frame, each frame judged on its own."""
        per_frame, per_frame_text = self.localizer_tokens(frames, samples)
        logits = self.next_token_logits(per_frame, per_frame_text, self.answer_prefix_ids[:1])  # (B*T, V)
        return logits[:, self.yes_token_id].reshape(frames.shape[:2])

    def forward(self, samples: dict, temperature: float = 1.0) -> dict:
        """The loss dict of the objective ``train_localizer`` picked (``sevila_objectives``)."""
        check_batch(samples)
        return self.objective.losses(self, samples, temperature)

    def keyframes(self, frames: torch.Tensor, localizer_frames: torch.Tensor, samples: dict) -> FrameChoice:
        """The top K frames by the localizer's relevance, in time order, without gradient:
        (B, T, N, C) -> (B, K, N, C)."""
        with torch.no_grad():
            relevance = self.frame_relevance(localizer_frames, samples)  # (B, T)
        indices = relevance.topk(self.num_selected_frames, dim=-1).indices.sort(dim=-1).values  # (B, K)
        selected = frames[torch.arange(frames.shape[0], device=frames.device)[:, None], indices]
        return FrameChoice(selected, indices)

    def load_checkpoint(self, url_or_filename: str, config_key: str = "checkpoint", partial: bool = False):
        """A checkpoint without localizer weights (BLIP-2, InstructBLIP, vila_uniform) initialises
        the localizer as a copy of its answerer, as SeViLA initialises it from BLIP-2's Q-Former."""
        result = load_into(self, url_or_filename, config_key, partial, model_fills=LOCALIZER_PREFIXES)
        state = self.state_dict()
        if not any(key.startswith(LOCALIZER_PREFIXES) for key in set(state) - set(result.missing_keys)):
            answerer_as_localizer = {key: value for key, value in renamed(state, LOCALIZER_SLOTS).items() if key in state}
            self.load_state_dict(answerer_as_localizer, strict=False)
        return result

    def load_checkpoint_from_config(self, cfg, **kwargs):
        """LAVIS's loading; then, for self-refinement from ``finetuned``, SeViLA's ``load_qformer_loc``
        (``reset_localizer_qformer``). From ``pretrained`` alone the localizer is already its copy."""
        super().load_checkpoint_from_config(cfg, **kwargs)
        if self.resets_localizer_qformer and cfg.get("load_finetuned", False):
            self.reset_localizer_qformer(cfg.get("pretrained"))

    def reset_localizer_qformer(self, pretrained) -> None:
        """``Qformer_loc`` <- the ``Qformer`` of ``pretrained`` (BLIP-2's); queries and projection stay."""
        if not pretrained:
            raise ValueError("reset_localizer_qformer: True resets the localizer's Q-Former to model.pretrained's "
                             "(BLIP-2's, as SeViLA's load_qformer_loc) before self-refinement, but model.pretrained "
                             "is not set: set it, or set reset_localizer_qformer: False to refine model.finetuned's "
                             "localizer as it is")
        qformer = renamed(load_state_dict_file(pretrained, "model.pretrained"), BLIP2_QFORMER_AS_LOCALIZER)
        result = self.load_state_dict(qformer, strict=False)
        uncovered = sorted(key for key in result.missing_keys if key.startswith("Qformer_loc."))
        if not qformer or uncovered:
            raise CheckpointError(f"model.pretrained: '{pretrained}' does not hold the whole Q-Former the localizer is "
                                  f"reset to (reset_localizer_qformer); missing: {uncovered[:5] or 'every Qformer.* key'}")
        logging.info("self-refinement: the localizer's Q-Former is reset to %s's Q-Former (SeViLA's load_qformer_loc; "
                     "reset_localizer_qformer: False keeps model.finetuned's)", pretrained)
