"""The shared InstructBLIP video backbone: frozen ViT -> instruction-aware Q-Former -> frozen T5.

``VideoInstructModel`` holds the parts every model here needs and the one student path: encode
every frame, ``select_frames`` (the hook each registered model defines: all frames for
``vila_uniform``, the Frame-Prompter for ``vila``, the localizer for ``sevila_baseline``), then the
Q-Former, the projection and the LLM. ``losses`` is the other hook (``vila`` adds distillation).

Tensor legend used in comments: B batch, T candidate frames, K selected frames, F frames fed to
the Q-Former, N ViT tokens per frame, C ViT width, Q query tokens, D LLM width, V vocab.
"""
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Optional

import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from lavis.models.base_model import BaseModel
from torch import nn
from transformers import BatchEncoding

from lavis_vila import saved_model
from lavis_vila.checkpoints import CheckpointError, load_into
from lavis_vila import config_check  # a module, not its names: importing it may register (cycle-safe)
from lavis_vila.models import backbones
from lavis_vila.models.prompters import FrameSelection
from lavis_vila.models.precision import DTYPES, autocast_to, cast_matmul_weights
from lavis_vila.models.stage_timing import LLM, QFORMER, VIT, stage
from lavis_vila.prompts import ANSWER_PREFIX, OPTION_LETTERS, answer_text



def check_batch(samples: dict) -> None:
    """Every per-sample entry holds one item per video; text entries are lists, not a string."""
    batch_size = len(samples["video"])
    for key in ("qa_input", "qa_output", "num_option", "qid"):
        if key not in samples:
            continue
        value = samples[key]
        if isinstance(value, str):
            raise ValueError(f"samples['{key}'] must be a list with one entry per video, got the string {value[:60]!r}")
        if len(value) != batch_size:
            raise ValueError(f"samples['{key}'] has {len(value)} entries for {batch_size} videos")


@dataclass
class FrameChoice:
    """The frames a model's ``select_frames`` keeps: features (B, F, N, C), their indices (B, F),
    increasing, and the Frame-Prompter's selection where there is one."""

    frames: torch.Tensor
    frame_idx: torch.Tensor
    selection: Optional[FrameSelection] = None


@dataclass
class StudentPass:
    """One pass of the student path: all frames' features (B, T, N, C; None where only the chosen
    frames were encoded to the end), the tokenized instruction, the choice, and the chosen frames'
    LLM-space tokens (B, F*Q, D)."""

    frames: Optional[torch.Tensor]
    instruction: BatchEncoding
    choice: FrameChoice
    tokens: torch.Tensor


@dataclass
class AnswerScores:
    """(B, 5) option scores (-inf past each ``num_option``), the frames used (B, F), the selection."""

    scores: torch.Tensor
    frame_idx: torch.Tensor
    selection: Optional[FrameSelection] = None


def freeze(module: nn.Module) -> None:
    for param in module.parameters():
        param.requires_grad = False


class VideoInstructModel(BaseModel):
    """Frozen EVA ViT, trainable ``ln_vision``/Q-Former/queries/``t5_proj``, frozen Flan-T5.

    Precision as in LAVIS: ``vit_precision: fp16`` casts the ViT's Linear and Conv weights and
    keeps its LayerNorms in fp32; ``llm_precision: bf16`` casts all of T5. Each backbone runs in
    an autocast region of its own precision, so the model trains under LAVIS's fp16 ``run.amp``.

    Parameter names follow LAVIS BLIP-2 / InstructBLIP (``visual_encoder``, ``ln_vision``,
    ``Qformer.bert.*``, ``query_tokens``, ``t5_proj``, ``t5_model``), so their released
    checkpoints load without renaming.

    ``official_style=True`` reproduces the official code's inference cost, for speed comparisons
    only: a Python loop of Q-Former calls, one per frame, and greedy ``generate`` of up to 30
    tokens whose second step's scores are read. The visual tokens are identical, and so are the
    scores once the model's first generated token is "Option", as a trained model's is.

    ``qformer_text_input: False`` builds BLIP-2's Q-Former without its text path (SeViLA's): the
    queries then read the frames only, whatever the instruction.

    Two choices where the paper is silent follow the official code, each behind one key:
    ``llm_dropout_in_training`` (the frozen T5 stays in train mode, so its dropout is active in
    training) and ``truncate_eval_prompt`` (False: the T5 prompt is cut to ``max_txt_len`` tokens
    in training only, never at evaluation).
    """

    num_candidate_frames: Optional[int] = None  # T, for models that select among the frames they get
    answer_frame_prefix: Optional[str] = None  # text before each frame's tokens in the answer's LLM input

    def __init__(
        self,
        *,
        vit_model: str,
        vit_weights: str = None,
        image_size: int = 224,
        vit_precision: str = "fp16",
        drop_path_rate: float = 0.0,
        use_grad_checkpoint: bool = False,
        qformer_model: str = "qformer_base",
        qformer_tokenizer: str = "bert-base-uncased",
        qformer_text_input: bool = True,
        num_query_token: int = 32,
        t5_model: str = "google/flan-t5-xl",
        t5_tokenizer: str = None,
        llm_precision: str = "bf16",
        max_txt_len: int = 128,
        max_output_txt_len: int = 32,
        truncate_eval_prompt: bool = False,
        llm_dropout_in_training: bool = True,
        official_style: bool = False,
        random_init_seed: int = 0,
        ln_vision_gain_std: float = 0.0,
        empty: bool = False,
    ):
        super().__init__()
        self.official_style = official_style
        self.max_txt_len = max_txt_len
        self.max_output_txt_len = max_output_txt_len
        self.truncate_eval_prompt = truncate_eval_prompt
        self.llm_dropout_in_training = llm_dropout_in_training
        # An empty architecture check reads local tokenizers but never asks the hub for one.
        self.qformer_tokenizer = self._tokenizer(backbones.build_qformer_tokenizer, qformer_tokenizer, empty)
        self.t5_tokenizer = self._tokenizer(backbones.build_t5_tokenizer, t5_tokenizer or t5_model, empty)

        self.visual_encoder = backbones.build_vision_encoder(
            vit_model, vit_weights, image_size, drop_path_rate, use_grad_checkpoint, empty=empty,
            random_init_seed=random_init_seed,
        )
        freeze(self.visual_encoder)
        cast_matmul_weights(self.visual_encoder, DTYPES[vit_precision])
        with backbones.device_context(empty):
            self.ln_vision = nn.LayerNorm(self.visual_encoder.num_features)
        if ln_vision_gain_std:
            # A fresh LayerNorm makes the channel mean of its output (what the Frame-Prompter reads)
            # identically zero; pretrained ln_vision gains are not uniform. For random backbones
            # (tiny), draw the gains from N(1, std), the same in every stage (random_init_seed).
            with backbones.seeded(random_init_seed):
                nn.init.normal_(self.ln_vision.weight, mean=1.0, std=ln_vision_gain_std)

        self.Qformer, self.query_tokens = backbones.build_qformer(
            qformer_model,
            num_query_token,
            self.visual_encoder.num_features,
            vocab_size=len(self.qformer_tokenizer) if self.qformer_tokenizer else None,
            empty=empty,
            text_input=qformer_text_input,
        )
        self.qformer_text_input = qformer_text_input

        self.t5_model = backbones.build_llm(
            t5_model, vocab_size=len(self.t5_tokenizer) if self.t5_tokenizer else None, empty=empty,
            random_init_seed=random_init_seed,
        )
        freeze(self.t5_model)
        self.t5_model.to(DTYPES[llm_precision])
        with backbones.device_context(empty):
            self.t5_proj = nn.Linear(self.Qformer.config.hidden_size, self.t5_model.config.d_model)

    @staticmethod
    def _tokenizer(build, source: str, empty: bool):
        return build(source) if not empty or backbones.is_offline_source(source) else None

    def frozen_modules(self):
        """Modules kept in eval mode whatever ``train()`` says (no dropout, fixed statistics)."""
        return [self.visual_encoder] + ([] if self.llm_dropout_in_training else [self.t5_model])

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    # ------------------------------------------------------------------ building blocks

    @property
    def vit_dtype(self) -> torch.dtype:
        return self.visual_encoder.patch_embed.proj.weight.dtype

    @property
    def llm_dtype(self) -> torch.dtype:
        return self.t5_model.shared.weight.dtype

    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) pixels -> (B, T, N, C) ``ln_vision(ViT(frame))`` features."""
        return self.vision_features(self.vit_features(video))

    def vit_features(self, x: torch.Tensor, start_block: int = 0, stop_block: Optional[int] = None) -> torch.Tensor:
        """ViT blocks [start, stop) on every frame, without gradient: pixels (B, T, 3, H, W) when
        ``start_block`` is 0, else that block's input (B, T, N, C). Returns raw tokens (B, T, N, C)."""
        batch_size, num_frames = x.shape[:2]
        with torch.no_grad(), autocast_to(x.device, self.vit_dtype), stage(VIT):
            tokens = self.vit_blocks(x.flatten(0, 1).to(self.vit_dtype), start_block, stop_block)  # (B*T, N, C)
        return tokens.reshape(batch_size, num_frames, *tokens.shape[1:])

    def vision_features(self, tokens: torch.Tensor, norm: Optional[nn.LayerNorm] = None) -> torch.Tensor:
        """``norm`` (default ``ln_vision``) over ViT tokens (..., N, C), in its own precision."""
        norm = norm or self.ln_vision
        with stage(VIT):
            return norm(tokens.to(norm.weight.dtype))

    def vit_blocks(self, x: torch.Tensor, start: int, stop: Optional[int]) -> torch.Tensor:
        """EVA blocks [start, stop) (stop None: to the end). ``start`` 0 takes pixels (M, 3, H, W)
        and embeds them first (patches, cls token, positions), as ``VisionTransformer`` does."""
        vit = self.visual_encoder
        if start == 0:
            x = vit.patch_embed(x)  # (M, N-1, C)
            x = torch.cat([vit.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
            x = vit.pos_drop(x + vit.pos_embed if vit.pos_embed is not None else x)
        rel_pos_bias = vit.rel_pos_bias() if vit.rel_pos_bias is not None else None
        for block in vit.blocks[start:stop]:
            x = block(x, rel_pos_bias)
        return x  # (M, N, C)

    def tokenize_instruction(self, qa_input):
        """BERT-tokenize the instruction once per batch, for every Q-Former call."""
        return self.qformer_tokenizer(
            list(qa_input),
            padding="longest",
            truncation=True,
            max_length=self.max_txt_len,
            return_tensors="pt",
        ).to(self.query_tokens.device)

    def frame_tokens(self, frames, instruction, qformer, query_tokens, proj, prefix: Optional[str] = None) -> torch.Tensor:
        """Instruction-aware Q-Former over every frame in one batched call.

        frames (B, F, N, C) -> LLM-space visual tokens (B, F*Q, D), frames in order. ``prefix``, a
        text such as SeViLA's "Frame {}: " (formatted with the 1-based frame number), puts its
        embedded tokens before each frame's: (B, F*(P+Q), D).
        """
        with stage(QFORMER):
            if self.official_style:
                tokens = torch.cat([
                    self._batched_frame_tokens(frames[:, i : i + 1], instruction, qformer, query_tokens, proj)
                    for i in range(frames.shape[1])
                ], dim=1)
            else:
                tokens = self._batched_frame_tokens(frames, instruction, qformer, query_tokens, proj)
        return tokens if prefix is None else self.prefix_frames(tokens, frames.shape[1], prefix)

    def prefix_frames(self, tokens: torch.Tensor, num_frames: int, prefix: str) -> torch.Tensor:
        """(B, F*Q, D) -> (B, F*(P+Q), D): the embedded ``prefix.format(f)`` before frame f's tokens."""
        chunks = []
        for frame, frame_tokens in enumerate(tokens.chunk(num_frames, dim=1), start=1):
            ids = self.t5_tokenizer(prefix.format(frame), add_special_tokens=False, return_tensors="pt").input_ids
            words = self.t5_model.encoder.embed_tokens(ids.to(tokens.device)).to(tokens.dtype)  # (1, P, D)
            chunks += [words.expand(tokens.shape[0], -1, -1), frame_tokens]
        return torch.cat(chunks, dim=1)

    def _batched_frame_tokens(self, frames, instruction, qformer, query_tokens, proj) -> torch.Tensor:
        batch_size, num_frames = frames.shape[:2]
        frames = frames.flatten(0, 1)  # (B*F, N, C)
        queries = query_tokens.expand(frames.shape[0], -1, -1)  # (B*F, Q, H)
        query_mask = torch.ones(queries.shape[:2], dtype=torch.long, device=frames.device)
        text_ids, attention_mask = None, query_mask  # a Q-Former without text path: the queries alone
        if self.qformer_text_input:
            text_ids = instruction.input_ids.repeat_interleave(num_frames, 0)  # (B*F, L)
            attention_mask = torch.cat([query_mask, instruction.attention_mask.repeat_interleave(num_frames, 0)], dim=1)
        output = qformer.bert(
            text_ids,
            attention_mask=attention_mask,
            query_embeds=queries,
            encoder_hidden_states=frames,
            encoder_attention_mask=torch.ones(frames.shape[:2], dtype=torch.long, device=frames.device),
            return_dict=True,
        )
        tokens = proj(output.last_hidden_state[:, : queries.shape[1]])  # (B*F, Q, D)
        return tokens.reshape(batch_size, num_frames * tokens.shape[1], tokens.shape[2])

    def _t5_tokenize(self, texts, max_length: Optional[int], device):
        """Left-truncated to ``max_length`` tokens; ``None``: not truncated."""
        return self.t5_tokenizer(
            list(texts), padding="longest", truncation=max_length is not None, max_length=max_length,
            return_tensors="pt",
        ).to(device)

    def _llm_encoder_inputs(self, visual_tokens: torch.Tensor, qa_input, max_length: Optional[int]):
        """[visual tokens ; T5-embedded instruction] -> inputs_embeds (B, F*Q + L, D) and mask."""
        text = self._t5_tokenize(qa_input, max_length, visual_tokens.device)
        text_embeds = self.t5_model.encoder.embed_tokens(text.input_ids)  # (B, L, D)
        inputs_embeds = torch.cat([visual_tokens.to(self.llm_dtype), text_embeds], dim=1)
        visual_mask = torch.ones(visual_tokens.shape[:2], dtype=text.attention_mask.dtype, device=visual_tokens.device)
        return inputs_embeds, torch.cat([visual_mask, text.attention_mask], dim=1)

    def answer_loss(self, visual_tokens: torch.Tensor, qa_input, qa_output) -> torch.Tensor:
        """Teacher-forced T5 cross-entropy of the target text ("Option X"), mean over tokens."""
        target = self._t5_tokenize(qa_output, self.max_output_txt_len, visual_tokens.device)
        labels = target.input_ids.masked_fill(target.input_ids == self.t5_tokenizer.pad_token_id, -100)
        with autocast_to(visual_tokens.device, self.llm_dtype):
            inputs_embeds, attention_mask = self._llm_encoder_inputs(visual_tokens, qa_input, self.max_txt_len)
            output = self.t5_model(
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                decoder_attention_mask=target.attention_mask,
                labels=labels,
                return_dict=True,
            )
        logits = output.logits.float()  # (B, L_out, V)
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)

    @cached_property
    def answer_prefix_ids(self) -> torch.Tensor:
        """Decoder input for scoring: [decoder start] + tokens of ``ANSWER_PREFIX``."""
        prefix = self.t5_tokenizer(ANSWER_PREFIX, add_special_tokens=False).input_ids
        return torch.tensor([self.t5_model.config.decoder_start_token_id] + prefix)

    @cached_property
    def option_letter_ids(self) -> torch.Tensor:
        """T5 ids of the letter that follows the answer prefix for A..E, read from the tokenizer."""
        prefix = self.answer_prefix_ids[1:].tolist()
        letter_ids = []
        for index in range(len(OPTION_LETTERS)):
            ids = self.t5_tokenizer(answer_text(index), add_special_tokens=False).input_ids
            if ids[:-1] != prefix:
                raise ValueError(
                    f"The T5 tokenizer splits '{answer_text(index)}' into {ids}; expected the ids of "
                    f"'{ANSWER_PREFIX}' {prefix} followed by one letter token"
                )
            letter_ids.append(ids[-1])
        return torch.tensor(letter_ids)

    def next_token_logits(self, visual_tokens: torch.Tensor, text, prefix_ids: torch.Tensor) -> torch.Tensor:
        """(B, V) float logits of the token after decoder prefix ``prefix_ids`` ([start, ...]).

        One encoder pass over [visual tokens ; text] and one decoder step, no autoregressive
        loop. In ``official_style`` the same logits come from greedy ``generate`` (max 30 new
        tokens) instead, read at step ``len(prefix_ids) - 1`` as the official code does.
        """
        device = visual_tokens.device
        with autocast_to(device, self.llm_dtype), stage(LLM):
            max_length = self.max_txt_len if self.truncate_eval_prompt else None
            inputs_embeds, attention_mask = self._llm_encoder_inputs(visual_tokens, text, max_length)
            if self.official_style:
                output = self.t5_model.generate(
                    inputs_embeds=inputs_embeds,
                    attention_mask=attention_mask,
                    num_beams=1,
                    max_new_tokens=30,
                    output_scores=True,
                    return_dict_in_generate=True,
                )
                return output.scores[min(len(prefix_ids) - 1, len(output.scores) - 1)].float()
            encoder_output = self.t5_model.encoder(
                inputs_embeds=inputs_embeds, attention_mask=attention_mask, return_dict=True
            )
            output = self.t5_model(
                encoder_outputs=encoder_output,
                attention_mask=attention_mask,
                decoder_input_ids=prefix_ids.to(device).expand(visual_tokens.shape[0], -1),
                return_dict=True,
            )
        return output.logits[:, -1].float()

    def option_scores(self, visual_tokens: torch.Tensor, qa_input, num_option) -> torch.Tensor:
        """Letter logits after the answer prefix: (B, 5) scores for A..E, -inf past each ``num_option``."""
        device = visual_tokens.device
        logits = self.next_token_logits(visual_tokens, qa_input, self.answer_prefix_ids)  # (B, V)
        letter_logits = logits[:, self.option_letter_ids.to(device)]  # (B, 5)
        counts = num_option.tolist() if torch.is_tensor(num_option) else list(num_option)
        if not all(2 <= int(n) <= len(OPTION_LETTERS) for n in counts):
            raise ValueError(f"num_option must be 2 to {len(OPTION_LETTERS)} for every sample, got {counts}")
        num_option = torch.as_tensor(counts, device=device).reshape(-1, 1)
        valid = torch.arange(len(OPTION_LETTERS), device=device) < num_option
        return letter_logits.masked_fill(~valid, float("-inf"))

    # ------------------------------------------------------------------ the student path

    def select_frames(self, frames: torch.Tensor, samples: dict, temperature: float) -> "FrameChoice":
        """The hook each model defines: which encoded frames (B, T, N, C) the answer sees. Here: all."""
        batch_size, num_frames = frames.shape[:2]
        return FrameChoice(frames, torch.arange(num_frames, device=frames.device).expand(batch_size, -1))

    def student_pass(self, samples: dict, temperature: float = 1.0) -> "StudentPass":
        """Encode the frames and choose (``encode_and_select``), then Q-Former and projection on the chosen."""
        num_frames = samples["video"].shape[1]
        if self.num_candidate_frames is not None and num_frames != self.num_candidate_frames:
            raise ValueError(
                f"{type(self).__name__} expects {self.num_candidate_frames} candidate frames per video, got "
                f"{num_frames}; set the video processor's num_frames to num_candidate_frames")
        frames, choice = self.encode_and_select(samples, temperature)
        instruction = self.tokenize_instruction(samples["qa_input"])
        tokens = self.frame_tokens(choice.frames, instruction, self.Qformer, self.query_tokens, self.t5_proj,
                                   self.answer_frame_prefix)
        return StudentPass(frames=frames, instruction=instruction, choice=choice, tokens=tokens)

    def encode_and_select(self, samples: dict, temperature: float):
        """Every frame's features (B, T, N, C) and the model's ``select_frames`` choice among them."""
        frames = self.encode_frames(samples["video"])
        return frames, self.select_frames(frames, samples, temperature)

    def forward(self, samples: dict, temperature: float = 1.0) -> dict:
        """Loss dict; ``temperature`` is the Gumbel temperature the task schedules (for selectors)."""
        check_batch(samples)
        return self.losses(self.student_pass(samples, temperature), samples)

    def losses(self, student: "StudentPass", samples: dict) -> dict:
        loss = self.answer_loss(student.tokens, samples["qa_input"], samples["qa_output"])
        return {"loss": loss, "loss_vqa": loss}

    def answer_scores(self, samples: dict) -> "AnswerScores":
        student = self.student_pass(samples)
        scores = self.option_scores(student.tokens, samples["qa_input"], samples["num_option"])
        return AnswerScores(scores=scores, frame_idx=student.choice.frame_idx, selection=student.choice.selection)

    @torch.no_grad()  # not inference_mode: tensors cached here must stay usable for training
    def predict_answers(self, samples, **kwargs):
        """Contract: ``samples`` has ``video`` (B, T, 3, H, W), ``qa_input`` and ``num_option``.

        Returns ``prediction`` (option index per sample, never beyond its ``num_option``) and
        ``frame_idx`` (per sample, the increasing indices of the frames the answer used).
        """
        check_batch(samples)
        answer = self.answer_scores(samples)
        return {"prediction": answer.scores.argmax(-1).tolist(), "frame_idx": answer.frame_idx.tolist()}

    # ------------------------------------------------------------------ checkpoints

    def load_checkpoint(self, url_or_filename: str, config_key: str = "checkpoint", partial: bool = False):
        """Load a LAVIS-style checkpoint safely; see ``checkpoints.load_into`` for what is refused."""
        return load_into(self, url_or_filename, config_key, partial)

    def load_checkpoint_from_config(self, cfg, **kwargs):
        """LAVIS's keys: ``finetuned`` when ``load_finetuned``, else ``pretrained``; null = random."""
        if cfg.get("load_finetuned", False):
            if not cfg.get("finetuned"):
                raise ValueError("model.load_finetuned is True but model.finetuned is not set")
            self.load_checkpoint(cfg.finetuned, "model.finetuned")
            return
        if cfg.get("finetuned"):
            raise ValueError(f"model.finetuned is set ('{cfg.finetuned}') but model.load_finetuned is False, so it "
                             f"would be ignored: set model.load_finetuned: True to load it, or model.finetuned: null")
        if cfg.get("pretrained"):
            self.load_checkpoint(cfg.pretrained, "model.pretrained", partial=True)
        else:
            logging.info("no pretrained checkpoint configured: trainable parts keep their random init")

    # ------------------------------------------------------------------ config

    @classmethod
    def default_config_path(cls, model_type):
        """A model type's YAML, or a saved-model folder's ``config.yaml`` (``lavis_vila.saved_model``)."""
        if saved_model.is_saved_model(model_type):
            return saved_model.config_path(model_type)
        return super().default_config_path(model_type)

    @classmethod
    def from_pretrained(cls, model_type):
        """LAVIS's ``from_pretrained``; a saved-model folder as ``model_type`` loads with its own weights."""
        if not saved_model.is_saved_model(model_type):
            return super().from_pretrained(model_type)
        cfg = saved_model.model_config_of(model_type)
        saved_cls = registry.get_model_class(cfg.get("arch"))
        if saved_cls is not cls:
            raise CheckpointError(f"'{model_type}' holds a saved '{cfg.get('arch')}' model, not a {cls.__name__}: load "
                                  f"it as load_model_and_preprocess('{cfg.get('arch')}', '{model_type}')")
        return cls.from_config(cfg)

    @classmethod
    def from_config(cls, cfg, empty: bool = False):
        config_check.check_model_section(cls, cfg, f"{cfg.get('arch', cls.__name__)} model config")
        model = cls(**cls.config_kwargs(cfg), empty=empty)
        if not empty:
            model.load_checkpoint_from_config(cfg)
        return model

    @classmethod
    def config_kwargs(cls, cfg) -> dict:
        """The constructor arguments present in a model config node (every key is checked first)."""
        return {key: cfg[key] for key in config_check.constructor_keys(cls) if key in cfg}
