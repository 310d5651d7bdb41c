"""Text-guided Frame-Prompter (ViLA §3.2, design (a): segment-wise masking).

The T candidate frames are cut into K contiguous segments of S = T/K frames. A small MLP scores
the frames of each segment from their channel-averaged ViT tokens, and a hard Gumbel-Softmax
with a straight-through gradient picks exactly one frame per segment. The MLP, ``scorer``:

- ``segment`` (the official code): Linear(S*N -> S) over each segment's concatenated frames,
  LayerNorm(S), ReLU, Linear(S -> S). Every position in a segment has weights of its own.
- ``frame``: the same layers applied to each frame alone, Linear(N -> S), LayerNorm(S), ReLU,
  Linear(S -> 1) (the paper's x_i = W2 ReLU(LN(W1 Mean(x_i))) read per frame), so what the
  scorer learns about a frame at one position holds at every position.
 The prompter sees no text:
it is "text-guided" because the answer loss, which depends on the question through the
instruction-aware Q-Former, flows back through the one-hot mask into its scores.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lavis_vila.models.precision import autocast_to


@dataclass
class FrameSelection:
    """One-hot choice of one frame per segment.

    ``mask`` is (B, K, S): exactly one 1 per segment; in training it carries the
    straight-through gradient of the soft Gumbel sample. ``logits`` is (B, K, S).
    """

    mask: torch.Tensor
    logits: torch.Tensor

    @property
    def frame_indices(self) -> torch.Tensor:
        """(B, K) chosen indices into the T candidates, increasing along K."""
        num_segments, segment_len = self.mask.shape[1:]
        offsets = torch.arange(num_segments, device=self.mask.device) * segment_len
        return self.mask.argmax(-1) + offsets

    @property
    def probabilities(self) -> torch.Tensor:
        """(B, K, S) per-segment selection probabilities softmax(logits)."""
        return self.logits.softmax(-1)


class FramePrompter(nn.Module):
    """Scores T candidate frames and keeps one per segment.

    Args:
        num_tokens: ViT tokens per frame N (257 for ViT-g at 224 px).
        num_candidate_frames: T.
        num_selected_frames: K, which is also the number of segments; T must be divisible by K.
        gradient: which mask entries the straight-through gradient reaches in ``gather``:
            ``"selected"`` (the official code) or ``"all"``.
        scorer: ``"segment"`` (the official code) or ``"frame"`` (see the module docstring).
    """

    def __init__(self, *, num_tokens: int, num_candidate_frames: int, num_selected_frames: int,
                 gradient: str = "selected", scorer: str = "segment"):
        super().__init__()
        if scorer not in ("segment", "frame"):
            raise ValueError(f"prompter_scorer must be 'segment' or 'frame', got {scorer!r}")
        self.scorer = scorer
        if gradient not in ("selected", "all"):
            raise ValueError(f"prompter_gradient must be 'selected' or 'all', got {gradient!r}")
        self.gradient = gradient
        if num_candidate_frames % num_selected_frames:
            raise ValueError(
                f"num_candidate_frames ({num_candidate_frames}) must be divisible by "
                f"num_selected_frames ({num_selected_frames})"
            )
        self.num_segments = num_selected_frames
        self.segment_len = num_candidate_frames // num_selected_frames
        per_frame = scorer == "frame"
        self.pool = nn.Linear(num_tokens * (1 if per_frame else self.segment_len), self.segment_len)
        self.norm = nn.LayerNorm(self.segment_len)
        self.score = nn.Linear(self.segment_len, 1 if per_frame else self.segment_len)

    def forward(
        self, frame_features: torch.Tensor, temperature: float = 1.0, sample: bool = None
    ) -> FrameSelection:
        """Select frames from ``frame_features`` (B, T, N, C).

        ``sample`` (default: ``self.training``) draws a hard Gumbel-Softmax sample at
        ``temperature``, with a straight-through gradient. Otherwise the choice is the
        deterministic argmax of the scores.
        """
        if sample is None:
            sample = self.training
        batch_size = frame_features.shape[0]
        with autocast_to(frame_features.device, torch.float32):  # scores and Gumbel noise in fp32 under amp
            pooled = frame_features.to(self.pool.weight.dtype).mean(-1)  # (B, T, N)
            pooled = pooled.reshape(batch_size, self.num_segments, self.segment_len, -1)  # (B, K, S, N)
            if self.scorer == "segment":
                pooled = pooled.flatten(2)  # (B, K, S*N)
            logits = self.score(F.relu(self.norm(self.pool(pooled))))  # (B, K, S, 1) or (B, K, S)
            logits = logits.reshape(batch_size, self.num_segments, self.segment_len)  # (B, K, S)
            if sample:
                mask = F.gumbel_softmax(logits, tau=temperature, hard=True, dim=-1)
            else:
                mask = F.one_hot(logits.argmax(-1), self.segment_len).to(logits.dtype)
        return FrameSelection(mask=mask, logits=logits)

    def gather(self, frame_features: torch.Tensor, selection: FrameSelection) -> torch.Tensor:
        """Apply the mask: (B, T, N, C) -> (B, K, N, C), keeping temporal order.

        The forward value is the chosen frames either way; ``self.gradient`` says which mask entries
        the straight-through gradient reaches. ``"selected"`` (the official code): the features
        are scaled by the mask and the chosen frame is indexed out, so only the K chosen entries
        get a gradient. ``"all"``: a weighted sum over each segment's frames, so every one of the
        T entries does.
        """
        batch_size, _, num_tokens, channels = frame_features.shape
        segments = frame_features.reshape(
            batch_size, self.num_segments, self.segment_len, num_tokens, channels
        )  # (B, K, S, N, C)
        mask = selection.mask.to(frame_features.dtype)  # (B, K, S)
        if self.gradient == "all":
            return torch.einsum("bksnc,bks->bknc", segments, mask)
        chosen = mask.argmax(-1, keepdim=True)  # (B, K, 1)
        chosen_mask = mask.gather(-1, chosen)  # (B, K, 1), all ones, carrying the gradient
        index = chosen[..., None, None].expand(-1, -1, 1, num_tokens, channels)  # (B, K, 1, N, C)
        chosen_frames = segments.gather(2, index).squeeze(2)  # (B, K, N, C)
        return chosen_frames * chosen_mask[..., None]
