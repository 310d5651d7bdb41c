"""``question_aware``: ours, beyond the paper. The question conditions the frame scores.

The paper's prompter never reads the question, so it learns one choice of frames per video
whatever is asked. Here each frame is scored by one MLP (Linear(C -> H), LayerNorm(H), ReLU,
Linear(H -> 1)) whose hidden features the question modulates, FiLM-style: h * (1 + gamma(q)) +
beta(q), with gamma and beta linear in LayerNorm(q), where q is an embedding of the instruction
(B, D). One frame per segment is then chosen as in ``segment``.

Two choices decide whether it can tell which event a question asks about:
- ``frame_feature``: what the MLP reads of a frame. ``token_mean`` (default), its mean ViT token
  (C values: what the frame shows); ``channel_mean``, the paper's prompter input, each token's
  mean over channels (N values), which says little about content.
- The LayerNorm of q: pretrained and freshly initialised word embeddings alike are small (std
  0.02 at init), so without it the question barely moves the scores and its weights barely learn.

The extra cost is one LayerNorm(D) and one Linear(D -> 2H) per video.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from lavis_vila.models.precision import autocast_to
from lavis_vila.models.prompters.base import FrameSelection, Prompter
from lavis_vila.models.prompters.segment import one_per_segment, segment_length


FRAME_FEATURES = {"channel_mean": -1, "token_mean": -2}  # the dimension of (B, T, N, C) averaged away


class QuestionAwarePrompter(Prompter):
    """One frame per segment, scored from the frame and the question.

    Args (beyond ``Prompter``'s):
        num_tokens: ViT tokens per frame N.
        question_dim: D of the question embedding.
        hidden: H, the scoring MLP's width.
    """

    reads_question = True

    def __init__(self, *, num_tokens: int, num_candidate_frames: int, num_selected_frames: int, question_dim: int,
                 vision_width: int = 0, gradient: str = "selected", hidden: int = 32,
                 frame_feature: str = "token_mean"):
        super().__init__(num_tokens=num_tokens, num_candidate_frames=num_candidate_frames,
                         num_selected_frames=num_selected_frames, vision_width=vision_width,
                         question_dim=question_dim, gradient=gradient)
        if frame_feature not in FRAME_FEATURES:
            raise ValueError(f"prompter_options.frame_feature must be one of {sorted(FRAME_FEATURES)}, "
                             f"got {frame_feature!r}")
        segment_length(num_candidate_frames, num_selected_frames)
        self.num_segments = num_selected_frames
        self.frame_feature = frame_feature
        self.pool = nn.Linear(num_tokens if frame_feature == "channel_mean" else vision_width, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.question_norm = nn.LayerNorm(question_dim)
        self.film = nn.Linear(question_dim, 2 * hidden)
        self.score = nn.Linear(hidden, 1)

    def forward(self, frame_features: torch.Tensor, temperature: float = 1.0, sample: bool = None,
                question: Optional[torch.Tensor] = None) -> FrameSelection:
        """Select frames from ``frame_features`` (B, T, N, C) for ``question`` (B, D)."""
        if question is None:
            raise ValueError("the question_aware prompter needs the question embedding")
        batch_size = frame_features.shape[0]
        with autocast_to(frame_features.device, torch.float32):
            pooled = frame_features.to(self.pool.weight.dtype).mean(FRAME_FEATURES[self.frame_feature])  # (B, T, N|C)
            hidden = self.norm(self.pool(pooled))  # (B, T, H)
            gamma, beta = self.film(self.question_norm(question.to(hidden.dtype))).chunk(2, dim=-1)  # (B, H) each
            hidden = hidden * (1 + gamma[:, None]) + beta[:, None]
            logits = self.score(F.relu(hidden)).squeeze(-1)  # (B, T)
            logits = logits.reshape(batch_size, self.num_segments, -1)  # (B, K, S)
            return one_per_segment(logits, temperature, self.training if sample is None else sample)
