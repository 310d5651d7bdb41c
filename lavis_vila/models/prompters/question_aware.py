"""``question_aware``: ours, beyond the paper. The question conditions the frame scores.

The paper's prompter never reads the question, so it learns one choice of frames per video
whatever is asked. Here each frame is scored by one MLP (Linear(N -> H), LayerNorm(H), ReLU,
Linear(H -> 1)) whose hidden features the question modulates, FiLM-style: h * (1 + gamma(q)) +
beta(q), with gamma and beta linear in LayerNorm(q), where q is an embedding of the instruction
(B, D). The LayerNorm matters: pretrained and freshly initialised word embeddings alike are
small (std 0.02 at init), so without it the question barely moves the scores and its weights
barely learn. One frame per segment is then chosen as in ``segment``. The extra cost is one
LayerNorm(D) and one Linear(D -> 2H) per video.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from lavis_vila.models.precision import autocast_to
from lavis_vila.models.prompters.base import FrameSelection, Prompter
from lavis_vila.models.prompters.segment import one_per_segment, segment_length


class QuestionAwarePrompter(Prompter):
    """One frame per segment, scored from the frame and the question.

    Args (beyond ``Prompter``'s):
        num_tokens: ViT tokens per frame N.
        question_dim: D of the question embedding.
        hidden: H, the scoring MLP's width.
    """

    reads_question = True

    def __init__(self, *, num_tokens: int, num_candidate_frames: int, num_selected_frames: int, question_dim: int,
                 gradient: str = "selected", hidden: int = 32):
        super().__init__(num_tokens=num_tokens, num_candidate_frames=num_candidate_frames,
                         num_selected_frames=num_selected_frames, question_dim=question_dim, gradient=gradient)
        segment_length(num_candidate_frames, num_selected_frames)
        self.num_segments = num_selected_frames
        self.pool = nn.Linear(num_tokens, hidden)
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
            hidden = self.norm(self.pool(frame_features.to(self.pool.weight.dtype).mean(-1)))  # (B, T, H)
            gamma, beta = self.film(self.question_norm(question.to(hidden.dtype))).chunk(2, dim=-1)  # (B, H) each
            hidden = hidden * (1 + gamma[:, None]) + beta[:, None]
            logits = self.score(F.relu(hidden)).squeeze(-1)  # (B, T)
            logits = logits.reshape(batch_size, self.num_segments, -1)  # (B, K, S)
            return one_per_segment(logits, temperature, self.training if sample is None else sample)
