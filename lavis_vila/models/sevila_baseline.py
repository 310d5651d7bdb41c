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

Training, as SeViLA's two steps (one config key, ``train_localizer``):
- ``train_localizer: True``, self-refinement: the frozen answerer answers from each candidate
  frame alone; the frames it gets right are pseudo-labelled "yes", the others "no", and the
  localizer learns to say so (T5 cross-entropy). Its checkpoints hold the localizer only;
  ``tools.sevila_weights`` joins them with the answerer's.
- ``train_localizer: False`` (default): the answerer trains on the frozen localizer's keyframes.
"""
import copy
from functools import cached_property

import torch

from lavis_vila.checkpoints import load_into
from lavis_vila.prompts import localizer_prompt
from lavis_vila.models.paths import model_config_paths
from lavis_vila.models.video_instruct import FrameChoice, VideoInstructModel, check_batch
from lavis_vila.registry import register_model

KEYFRAME, NOT_KEYFRAME = "yes", "no"  # the localizer's targets in self-refinement
LOCALIZER_PREFIXES = ("Qformer_loc.", "query_tokens_loc", "t5_proj_loc.", "ln_vision_loc.")
LOCALIZER_PROMPTS = ("qa", "sevila")


@register_model("sevila_baseline")
class SeViLABaseline(VideoInstructModel):
    """Usage: ``load_model_and_preprocess("sevila_baseline", "tiny", is_eval=True)``; model type
    ``sevila_flant5xl`` for SeViLA's architecture and released weights."""

    PRETRAINED_MODEL_CONFIG_DICT = model_config_paths("sevila_baseline", ("sevila_flant5xl", "sevila_tiny"))

    def __init__(self, *, num_candidate_frames: int = 32, num_selected_frames: int = 4, train_localizer: bool = False,
                 frame_prefixes: bool = False, separate_ln_vision_loc: bool = False, localizer_prompt: str = "qa",
                 empty: bool = False, **backbone_kwargs):
        super().__init__(empty=empty, **backbone_kwargs)
        if localizer_prompt not in LOCALIZER_PROMPTS:
            raise ValueError(f"localizer_prompt must be one of {LOCALIZER_PROMPTS}, got {localizer_prompt!r}")
        self.num_candidate_frames = num_candidate_frames
        self.num_selected_frames = num_selected_frames
        self.train_localizer = train_localizer
        self.localizer_prompt = localizer_prompt
        self.answer_frame_prefix, self.single_frame_prefix = ("Frame {}: ", "Frame: ") if frame_prefixes else (None, None)
        self.Qformer_loc = copy.deepcopy(self.Qformer)
        self.query_tokens_loc = copy.deepcopy(self.query_tokens)
        self.t5_proj_loc = copy.deepcopy(self.t5_proj)
        self.ln_vision_loc = copy.deepcopy(self.ln_vision) if separate_ln_vision_loc else None
        for part in self.answerer_parts() if train_localizer else self.localizer_parts():
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
        return super().frozen_modules() + [self.Qformer if self.train_localizer else self.Qformer_loc]

    @cached_property
    def yes_token_id(self) -> int:
        ids = self.t5_tokenizer(KEYFRAME, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise ValueError(f"The T5 tokenizer splits '{KEYFRAME}' into {ids}; the localizer needs one token")
        return ids[0]

    def localizer_questions(self, samples: dict) -> list:
        """``qa``: built from each QA prompt (``prompts.localizer_prompt``); ``sevila``: SeViLA's own
        string with its "Options: (...)" hint, which the dataset gives as ``loc_input``."""
        if self.localizer_prompt == "qa":
            return [localizer_prompt(q) for q in samples["qa_input"]]
        if "loc_input" not in samples:
            raise ValueError("localizer_prompt: sevila reads samples['loc_input'] (SeViLA's localizer question, "
                             "which MCVideoQADataset gives); this batch has none")
        return list(samples["loc_input"])

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

    @torch.no_grad()
    def pseudo_labels(self, frames: torch.Tensor, samples: dict) -> torch.Tensor:
        """SeViLA's self-refinement labels: (B, T) True where the frozen answerer, shown that frame
        alone, picks the right option ("keyframe: yes")."""
        batch_size, num_frames = frames.shape[:2]
        per_frame = frames.flatten(0, 1)[:, None]  # (B*T, 1, N, C)
        qa_input = [text for text in samples["qa_input"] for _ in range(num_frames)]
        instruction = self.tokenize_instruction(qa_input)
        tokens = self.frame_tokens(per_frame, instruction, self.Qformer, self.query_tokens, self.t5_proj,
                                   self.single_frame_prefix)  # (B*T, P+Q, D)
        num_option = torch.as_tensor(samples["num_option"]).repeat_interleave(num_frames)
        prediction = self.option_scores(tokens, qa_input, num_option).argmax(-1).reshape(batch_size, num_frames)
        return prediction == torch.as_tensor(samples["answer"], device=prediction.device)[:, None]

    def localizer_loss(self, frames: torch.Tensor, samples: dict, labels: torch.Tensor) -> torch.Tensor:
        """T5 cross-entropy of "yes"/"no" (``labels`` (B, T)) for every frame judged on its own."""
        per_frame, per_frame_text = self.localizer_tokens(frames, samples)
        targets = [KEYFRAME if label else NOT_KEYFRAME for label in labels.flatten().tolist()]
        return self.answer_loss(per_frame, per_frame_text, targets)

    def forward(self, samples: dict, temperature: float = 1.0) -> dict:
        """``train_localizer``: self-refinement of the localizer on the frozen answerer's pseudo-labels.
        Otherwise the answerer trains on the frozen localizer's keyframes (SeViLA's fine-tuning)."""
        if not self.train_localizer:
            return super().forward(samples, temperature)
        check_batch(samples)
        vit_tokens = self.vit_features(samples["video"])  # (B, T, N, C)
        frames = self.vision_features(vit_tokens)
        labels = self.pseudo_labels(frames, samples)
        loss = self.localizer_loss(self.localizer_features(vit_tokens, frames), samples, labels)
        return {"loss": loss, "loss_localizer": loss, "keyframe_fraction": labels.float().mean()}

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
        if not any(key.startswith(LOCALIZER_PREFIXES) for key in set(self.state_dict()) - set(result.missing_keys)):
            self.Qformer_loc.load_state_dict(self.Qformer.state_dict())
            self.query_tokens_loc.data.copy_(self.query_tokens.data)
            self.t5_proj_loc.load_state_dict(self.t5_proj.state_dict())
            if self.has_ln_vision_loc:
                self.ln_vision_loc.load_state_dict(self.ln_vision.state_dict())
        return result
