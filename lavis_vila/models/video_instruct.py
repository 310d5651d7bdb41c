"""The shared InstructBLIP video backbone: frozen ViT -> instruction-aware Q-Former -> frozen T5.

``VideoInstructModel`` holds the parts every model here needs and the one student path: encode
every frame, ``select_frames`` (the hook each registered model defines: all frames for
``vila_uniform``, the Frame-Prompter for ``vila``, the localizer for ``sevila_baseline``), then the
Q-Former, the projection and the LLM. ``losses`` is the other hook (``vila`` adds distillation).
Its parts live in their own modules: ``visual_tokens`` (ViT and Q-Former), ``llm_scoring`` (the
T5 loss and option scores), ``inference_styles`` (batched or official-style inference) and
``configured`` (configs, checkpoints, saved models).

Tensor legend used in comments: B batch, T candidate frames, K selected frames, F frames fed to
the Q-Former, N ViT tokens per frame, C ViT width, Q query tokens, D LLM width, V vocab.
"""
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from transformers import BatchEncoding

from lavis_vila.models import backbones
from lavis_vila.models.compiled import compile_mode
from lavis_vila.models.configured import ConfiguredModel
from lavis_vila.models.host_transfer import to_host
from lavis_vila.models.inference_styles import inference_style
from lavis_vila.models.llm_scoring import LLMScoring
from lavis_vila.models.prompters.base import FrameSelection
from lavis_vila.models.precision import DTYPES, cast_matmul_weights, dtype_named
from lavis_vila.models.visual_tokens import VisualTokens
from lavis_vila.prompts import OPTION_LETTERS


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


NORMALISED_PIXEL_BOUND = 10.0  # CLIP-normalised pixels lie in about [-1.8, 2.2]; 0-255 values do not


def check_pixel_dtype(video: torch.Tensor) -> None:
    """``video`` (B, T, 3, H, W) holds float pixels, as the video processors return, not raw decoded uint8."""
    if not torch.is_floating_point(video):
        raise ValueError(f"samples['video'] is {video.dtype}: give normalised float frames, as the video processors "
                         f"return (VideoEvalProcessor.normalize on the decoded uint8 pixels)")


def pixel_health(video: torch.Tensor) -> tuple:
    """Per video, on the device (no host sync): whether every pixel is finite, and the largest |pixel|."""
    per_video = video.detach().flatten(1)  # (B, T*3*H*W)
    return torch.isfinite(per_video).all(1), per_video.abs().amax(1)  # (B,), (B,)


def check_pixels(finite: list, largest: list, qids=None) -> None:
    """From ``pixel_health`` read back: no NaN or infinite pixels, and normalised values (not 0-255)."""
    names = list(qids) if qids is not None else list(range(len(finite)))
    bad = [names[i] for i, ok in enumerate(finite) if not ok]
    if bad:
        raise ValueError(f"samples['video'] holds NaN or infinite pixels (videos {bad} of the batch)")
    bad = [names[i] for i, value in enumerate(largest) if value > NORMALISED_PIXEL_BOUND]
    if bad:
        raise ValueError(f"samples['video'] holds pixels up to {max(largest):.0f} (videos {bad} of the batch): "
                         f"not normalised; give frames as the video processors return them (normalize after decoding)")


def check_num_option(num_option: list) -> None:
    if not all(2 <= n <= len(OPTION_LETTERS) for n in num_option):
        raise ValueError(f"num_option must be 2 to {len(OPTION_LETTERS)} for every sample, got {num_option}")


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


class VideoInstructModel(VisualTokens, LLMScoring, ConfiguredModel):
    """Frozen EVA ViT, trainable ``ln_vision``/Q-Former/queries/``t5_proj``, frozen Flan-T5.

    Precision as in LAVIS: ``vit_precision: fp16`` casts the ViT's Linear and Conv weights and
    keeps its LayerNorms in fp32; ``llm_precision: bf16`` casts all of T5 (unless
    ``llm_weights_fp32``: its weights stay as loaded, fp32, and compute in bf16). Each backbone runs in
    an autocast region of its own precision, so the model trains under LAVIS's fp16 ``run.amp``.
    ``llm_input_precision`` (default ``fp32``) is the dtype of T5's encoder input, [visual tokens ;
    embedded text]: fp32 is what CUDA's autocast gives the official code (concatenating fp16
    tokens with bf16 embeddings promotes to fp32), so the encoder's residual stream stays fp32
    while its matmuls run in bf16; ``bf16`` runs the whole encoder in bf16.

    Parameter names follow LAVIS BLIP-2 / InstructBLIP (``visual_encoder``, ``ln_vision``,
    ``Qformer.bert.*``, ``query_tokens``, ``t5_proj``, ``t5_model``), so their released
    checkpoints load without renaming.

    ``official_style=True`` builds the model with the official code's inference cost, for speed
    comparisons only (``inference_styles.OfficialStyleInference``).

    ``qformer_text_input: False`` builds BLIP-2's Q-Former without its text path (SeViLA's): the
    queries then read the frames only, whatever the instruction.

    Two choices where the paper is silent follow the official code, each behind one key:
    ``llm_dropout_in_training`` (the frozen T5 stays in train mode, so its dropout is active in
    training) and ``truncate_eval_prompt`` (False: the T5 prompt is cut to ``max_txt_len`` tokens
    in training only, never at evaluation).

    ``compile``: ``false`` (default), ``default`` or ``reduce-overhead`` compiles the inference
    (``lavis_vila.models.compiled``).
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
        llm_weights_fp32: bool = False,
        llm_input_precision: str = "fp32",
        max_txt_len: int = 128,
        max_output_txt_len: int = 32,
        truncate_eval_prompt: bool = False,
        llm_dropout_in_training: bool = True,
        official_style: bool = False,
        random_init_seed: int = 0,
        ln_vision_gain_std: float = 0.0,
        compile=False,
        empty: bool = False,
    ):
        super().__init__()
        self.inference = inference_style(official_style)
        self.inference_compile = compile_mode(compile)  # applied once the model is built (ConfiguredModel.from_config)
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
        self.llm_compute_dtype = dtype_named("llm_precision", llm_precision)  # T5's autocast region
        self.t5_model.to(torch.float32 if llm_weights_fp32 else self.llm_compute_dtype)  # its weights
        self.llm_input_dtype = dtype_named("llm_input_precision", llm_input_precision)
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
        ``frame_idx`` (per sample, the increasing indices of the frames the answer used). Both,
        and ``num_option`` to check, leave the device together at the end: one host sync.
        """
        check_batch(samples)
        check_pixel_dtype(samples["video"])
        finite, largest = pixel_health(samples["video"])
        answer = self.answer_scores(samples)
        num_option = torch.as_tensor(samples["num_option"], device=answer.scores.device)
        prediction, frame_idx, num_option, finite, largest = to_host(
            answer.scores.argmax(-1), answer.frame_idx, num_option, finite, largest)
        check_num_option(num_option)
        check_pixels(finite, largest, samples.get("qid"))  # the answer is computed, but not returned
        return {"prediction": prediction, "frame_idx": frame_idx}
