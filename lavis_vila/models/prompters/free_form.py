"""``free_form``: our reading of the paper's design (b), free-form masking: K of the T frames, anywhere.

The paper's (b) is a per-frame keep-or-drop choice (a 2-way Gumbel-Softmax per frame, B x T x 2),
which fixes no frame count; this prompter draws exactly K frames by Gumbel top-K instead, so the
answerer sees K frames whichever design picks them.

One MLP scores each frame alone (Linear(N -> H), LayerNorm(H), ReLU, Linear(H -> 1)). Training
draws K frames without replacement by Gumbel top-k: the scores plus Gumbel noise, the best K
(Kool et al., 2019). Each pick is a straight-through one-hot whose soft side is a softmax at
``temperature`` over the frames not yet picked, so the gradient of every row reaches every
frame it could have picked. Evaluation keeps the K best scores. The rows are put in temporal
order. The paper describes design (b) without its details and the official code does not
implement it.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from lavis_vila.models.precision import autocast_to
from lavis_vila.models.prompters.base import FrameSelection, Prompter, gumbel_noise, straight_through


class FrameScoreMLP(nn.Module):
    """(..., N) channel-averaged frame -> (...) score, the same weights for every frame."""

    def __init__(self, num_tokens: int, hidden: int):
        super().__init__()
        self.pool = nn.Linear(num_tokens, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.score = nn.Linear(hidden, 1)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.score(F.relu(self.norm(self.pool(pooled)))).squeeze(-1)


class FreeFormPrompter(Prompter):
    """Keeps the K best-scoring of T frames (sampled by Gumbel top-k in training).

    Args (beyond ``Prompter``'s):
        num_tokens: ViT tokens per frame N.
        hidden: the scoring MLP's width (default T/K, the segment prompter's).
    """

    def __init__(self, *, num_tokens: int, num_candidate_frames: int, num_selected_frames: int,
                 vision_width: int = 0, question_dim: int = 0, gradient: str = "selected", hidden: Optional[int] = None):
        super().__init__(num_tokens=num_tokens, num_candidate_frames=num_candidate_frames,
                         num_selected_frames=num_selected_frames, vision_width=vision_width, question_dim=question_dim,
                         gradient=gradient)
        self.scorer = FrameScoreMLP(num_tokens, hidden or max(1, num_candidate_frames // num_selected_frames))

    def forward(self, frame_features: torch.Tensor, temperature: float = 1.0, sample: bool = None,
                question: Optional[torch.Tensor] = None) -> FrameSelection:
        """Select K frames from ``frame_features`` (B, T, N, C); see the module docstring."""
        if sample is None:
            sample = self.training
        with autocast_to(frame_features.device, torch.float32):
            logits = self.scorer(frame_features.to(self.scorer.pool.weight.dtype).mean(-1))  # (B, T)
            keys = logits + gumbel_noise(logits) if sample else logits
            rows, taken = [], torch.zeros_like(logits, dtype=torch.bool)
            for _ in range(self.num_selected_frames):
                open_keys = keys.masked_fill(taken, float("-inf"))
                hard = F.one_hot(open_keys.argmax(-1), logits.shape[-1]).to(logits.dtype)  # (B, T)
                rows.append(straight_through(hard, (open_keys / temperature).softmax(-1)) if sample else hard)
                taken = taken | hard.bool()
            mask = torch.stack(rows, 1)  # (B, K, T), in the order picked
            order = mask.argmax(-1).argsort(-1)  # (B, K): temporal order
            mask = mask.gather(1, order[..., None].expand_as(mask))
        return FrameSelection(mask=mask, logits=logits, probabilities=logits.softmax(-1))
