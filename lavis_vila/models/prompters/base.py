"""What every Frame-Prompter returns, and how its choice is applied to the frames.

A prompter keeps K of T candidate frames, in temporal order. Its choice is a mask of K one-hot
rows over the T candidates; in training the rows carry a straight-through gradient (the forward
value is hard, the backward pass is that of a soft relaxation).
"""
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class FrameSelection:
    """``mask`` (B, K, T): row k is one-hot on the k-th chosen frame, in temporal order.
    ``logits`` (B, T): each candidate's score. ``probabilities`` (B, T): each candidate's
    selection probability (within its segment for one-per-segment prompters)."""

    mask: torch.Tensor
    logits: torch.Tensor
    probabilities: torch.Tensor

    @property
    def frame_indices(self) -> torch.Tensor:
        """(B, K) chosen indices into the T candidates, increasing along K."""
        return self.mask.argmax(-1)


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """The value of ``hard`` with the gradient of ``soft``."""
    return hard - soft.detach() + soft


def gumbel_noise(like: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise shaped like ``like``."""
    return -torch.empty_like(like).exponential_().log()


def gather_selected(mask: torch.Tensor, frame_features: torch.Tensor) -> torch.Tensor:
    """``gradient: selected`` (the official code): each chosen frame (B, T, N, C) -> (B, K, N, C) is
    indexed out and scaled by its mask entry (B, K, T), so only the K chosen entries get a gradient."""
    chosen = mask.argmax(-1, keepdim=True)  # (B, K, 1)
    chosen_mask = mask.gather(-1, chosen)  # (B, K, 1), all ones, carrying the gradient
    index = chosen[..., None].expand(-1, -1, *frame_features.shape[2:])  # (B, K, N, C)
    return frame_features.gather(1, index) * chosen_mask[..., None]


def gather_weighted(mask: torch.Tensor, frame_features: torch.Tensor) -> torch.Tensor:
    """``gradient: all``: a sum over the candidates (B, T, N, C) weighted by the mask (B, K, T), so
    every entry a row can choose gets a gradient."""
    return torch.einsum("bkt,btnc->bknc", mask, frame_features)  # (B, K, N, C)


GATHERS = {"selected": gather_selected, "all": gather_weighted}


class Prompter(nn.Module):
    """Base class: K of T frames, and ``gather`` with the chosen straight-through gradient.

    Every prompter is built with the same arguments, then its own options (``prompter_options``):
        num_tokens: ViT tokens per frame N (257 for ViT-g at 224 px).
        vision_width: ViT width C (1408 for ViT-g).
        num_candidate_frames: T.
        num_selected_frames: K.
        question_dim: D of the question embedding ``forward`` gets when ``reads_question``.
        gradient: which mask entries the straight-through gradient reaches in ``gather``:
            ``"selected"`` (the official code) or ``"all"`` (``GATHERS``).

    ``forward(frame_features (B, T, N, C), temperature, sample, question)`` returns a
    ``FrameSelection``: sampled in training (``sample`` defaults to ``self.training``), else
    deterministic.
    """

    reads_question = False

    def __init__(self, *, num_tokens: int, num_candidate_frames: int, num_selected_frames: int,
                 vision_width: int = 0, question_dim: int = 0, gradient: str = "selected"):
        super().__init__()
        if gradient not in GATHERS:
            raise ValueError(f"prompter_gradient must be 'selected' or 'all', got {gradient!r}")
        if not 1 <= num_selected_frames <= num_candidate_frames:
            raise ValueError(f"num_selected_frames ({num_selected_frames}) must be 1 to num_candidate_frames "
                             f"({num_candidate_frames})")
        self.num_tokens = num_tokens
        self.vision_width = vision_width
        self.question_dim = question_dim
        self.num_candidate_frames = num_candidate_frames
        self.num_selected_frames = num_selected_frames
        self.gather_masked = GATHERS[gradient]

    def gather(self, frame_features: torch.Tensor, selection: FrameSelection) -> torch.Tensor:
        """Apply the mask: (B, T, N, C) -> (B, K, N, C), keeping temporal order. The forward value
        is the chosen frames either way; ``gradient`` chose which mask entries the gradient reaches."""
        return self.gather_masked(selection.mask.to(frame_features.dtype), frame_features)
