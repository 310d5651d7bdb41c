"""How a model runs its Q-Former over the frames and reads the LLM's next-token logits.

- ``BatchedInference`` (ours, every model's default): one Q-Former call over all frames, one
  encoder pass and one decoder step after the answer prefix.
- ``OfficialStyleInference``: the official code's inference cost, for speed comparisons only: a
  Python loop of Q-Former calls, one per frame, and greedy ``generate`` of up to 30 tokens whose
  step after the prefix is read. The visual tokens are identical, and so are the scores once the
  model's first generated token is "Option", as a trained model's is.

A model picks one at construction (config key ``official_style``); ``official_style(model)``
gives a running model's official-style twin, sharing all its weights (the speed benchmark).
"""
import copy
from typing import Callable

import torch

# Shapes: B batch, F frames, N ViT tokens per frame, C ViT width, Q query tokens, D LLM width,
# L encoder input length, P decoder prefix length, V vocab.


class BatchedInference:
    def frame_tokens(self, frames: torch.Tensor, qformer_tokens: Callable) -> torch.Tensor:
        """(B, F, N, C) -> (B, F*Q, D): ``qformer_tokens`` over every frame at once."""
        return qformer_tokens(frames)

    def next_token_logits(self, t5_model, inputs_embeds, attention_mask, prefix_ids: torch.Tensor) -> torch.Tensor:
        """(B, L, D) encoder inputs, (P,) decoder prefix -> (B, V) logits of the token after it."""
        encoder_output = t5_model.encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask, return_dict=True)
        output = t5_model(
            encoder_outputs=encoder_output,
            attention_mask=attention_mask,
            decoder_input_ids=prefix_ids.expand(inputs_embeds.shape[0], -1),
            return_dict=True,
        )
        return output.logits[:, -1].float()


class OfficialStyleInference:
    def frame_tokens(self, frames: torch.Tensor, qformer_tokens: Callable) -> torch.Tensor:
        """(B, F, N, C) -> (B, F*Q, D): one ``qformer_tokens`` call per frame."""
        return torch.cat([qformer_tokens(frames[:, i : i + 1]) for i in range(frames.shape[1])], dim=1)

    def next_token_logits(self, t5_model, inputs_embeds, attention_mask, prefix_ids: torch.Tensor) -> torch.Tensor:
        """The scores of greedy ``generate`` (max 30 new tokens) at step ``len(prefix_ids) - 1``."""
        output = t5_model.generate(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            num_beams=1,
            max_new_tokens=30,
            output_scores=True,
            return_dict_in_generate=True,
        )
        return output.scores[min(len(prefix_ids) - 1, len(output.scores) - 1)].float()


def inference_style(official_style: bool):
    return OfficialStyleInference() if official_style else BatchedInference()


def official_style(model):
    """A shallow copy of ``model`` that infers as the official code does; every module is shared."""
    twin = copy.copy(model)
    twin.inference = OfficialStyleInference()
    return twin
