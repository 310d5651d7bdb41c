"""``segment``: the paper's Frame-Prompter, design (a), segment-wise masking (ViLA §3.2).

The T candidate frames are cut into K contiguous segments of S = T/K frames. A small MLP scores
the frames of each segment from their channel-averaged ViT tokens, and a hard Gumbel-Softmax
with a straight-through gradient picks exactly one frame per segment. The MLP, ``scorer``:

- ``segment`` (the official code): Linear(S*N -> S) over each segment's concatenated frames,
  LayerNorm(S), ReLU, Linear(S -> S). Every position in a segment has weights of its own.
- ``frame``: the same layers applied to each frame alone, Linear(N -> S), LayerNorm(S), ReLU,
  Linear(S -> 1) (the paper's x_i = W2 ReLU(LN(W1 Mean(x_i))) read per frame), so what the
  scorer learns about a frame at one position holds at every position.

The prompter sees no text: it is "text-guided" because the answer loss, which depends on the
question through the instruction-aware Q-Former, flows back through the mask into its scores.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from lavis_vila.models.precision import autocast_to
from lavis_vila.models.prompters.base import FrameSelection, Prompter


class PerSegmentScorer:
    """``scorer: segment``: the MLP reads a segment's S frames at once and gives S logits."""

    def widths(self, num_tokens: int, segment_len: int) -> tuple:
        """(input, output) widths of the MLP: (S*N, S)."""
        return num_tokens * segment_len, segment_len

    def arrange(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled.flatten(2)  # (B, K, S, N) -> (B, K, S*N)


class PerFrameScorer:
    """``scorer: frame``: the MLP reads one frame and gives its logit."""

    def widths(self, num_tokens: int, segment_len: int) -> tuple:
        """(input, output) widths of the MLP: (N, 1)."""
        return num_tokens, 1

    def arrange(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled  # (B, K, S, N)


SCORERS = {"segment": PerSegmentScorer, "frame": PerFrameScorer}


class SegmentPrompter(Prompter):
    """Scores T candidate frames and keeps one per segment.

    Args (beyond ``Prompter``'s):
        num_tokens: ViT tokens per frame N (257 for ViT-g at 224 px).
        scorer: ``"segment"`` (the official code) or ``"frame"`` (see the module docstring).
    """

    def __init__(self, *, num_tokens: int, num_candidate_frames: int, num_selected_frames: int,
                 vision_width: int = 0, question_dim: int = 0, gradient: str = "selected", scorer: str = "segment"):
        super().__init__(num_tokens=num_tokens, num_candidate_frames=num_candidate_frames,
                         num_selected_frames=num_selected_frames, vision_width=vision_width, question_dim=question_dim,
                         gradient=gradient)
        if scorer not in SCORERS:
            raise ValueError(f"prompter_options.scorer must be 'segment' or 'frame', got {scorer!r}")
        self.scorer = SCORERS[scorer]()
        self.num_segments = num_selected_frames
        self.segment_len = segment_length(num_candidate_frames, num_selected_frames)
        in_width, out_width = self.scorer.widths(num_tokens, self.segment_len)
        self.pool = nn.Linear(in_width, self.segment_len)
        self.norm = nn.LayerNorm(self.segment_len)
        self.score = nn.Linear(self.segment_len, out_width)

    def segment_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, K, S, N) channel-averaged frames -> (B, K, S) logits."""
        logits = self.score(F.relu(self.norm(self.pool(self.scorer.arrange(pooled)))))  # (B, K, S, 1) or (B, K, S)
        return logits.reshape(*pooled.shape[:2], self.segment_len)

    def forward(self, frame_features: torch.Tensor, temperature: float = 1.0, sample: bool = None,
                question: Optional[torch.Tensor] = None) -> FrameSelection:
        """Select frames from ``frame_features`` (B, T, N, C).

        ``sample`` (default: ``self.training``) draws a hard Gumbel-Softmax sample at
        ``temperature``, with a straight-through gradient. Otherwise the choice is the
        deterministic argmax of the scores.
        """
        batch_size = frame_features.shape[0]
        with autocast_to(frame_features.device, torch.float32):  # scores and Gumbel noise in fp32 under amp
            pooled = frame_features.to(self.pool.weight.dtype).mean(-1)  # (B, T, N)
            pooled = pooled.reshape(batch_size, self.num_segments, self.segment_len, -1)  # (B, K, S, N)
            logits = self.segment_logits(pooled)  # (B, K, S)
            return one_per_segment(logits, temperature, self.training if sample is None else sample)


def segment_length(num_candidate_frames: int, num_selected_frames: int) -> int:
    """S = T/K; T must be divisible by K."""
    if num_candidate_frames % num_selected_frames:
        raise ValueError(f"num_candidate_frames ({num_candidate_frames}) must be divisible by "
                         f"num_selected_frames ({num_selected_frames})")
    return num_candidate_frames // num_selected_frames


def one_per_segment(logits: torch.Tensor, temperature: float, sample: bool) -> FrameSelection:
    """One frame per segment from ``logits`` (B, K, S): a hard Gumbel-Softmax sample with a
    straight-through gradient, or the argmax."""
    num_segments, segment_len = logits.shape[1:]
    if sample:
        mask = F.gumbel_softmax(logits, tau=temperature, hard=True, dim=-1)
    else:
        mask = F.one_hot(logits.argmax(-1), segment_len).to(logits.dtype)
    eye = torch.eye(num_segments, dtype=mask.dtype, device=mask.device)
    mask = torch.einsum("bks,kj->bkjs", mask, eye).flatten(2)  # (B, K, T): row k lives in segment k
    return FrameSelection(mask=mask, logits=logits.flatten(1), probabilities=logits.softmax(-1).flatten(1))
