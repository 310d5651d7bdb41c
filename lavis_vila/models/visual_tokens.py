"""From pixels to LLM-space visual tokens: the frozen ViT, ``ln_vision``, then an
instruction-aware Q-Former and its projection over every frame.

Shapes: B batch, T frames, F frames fed to the Q-Former, N ViT tokens per frame, C ViT width,
M ViT inputs (frames of the batch, flattened), L instruction tokens, Q query tokens, H Q-Former
width, D LLM width, P prefix tokens.
"""
from typing import Optional

import torch
from torch import nn

from lavis_vila.models.precision import autocast_to
from lavis_vila.models.stage_timing import QFORMER, VIT, stage


class VisualTokens:
    """Mixin of ``VideoInstructModel``: reads its ``visual_encoder``, ``ln_vision``,
    ``qformer_tokenizer``, ``qformer_text_input``, ``max_txt_len``, ``t5_tokenizer``, ``t5_model``
    and ``llm_input_dtype`` (for frame prefixes) and ``inference`` (one Q-Former call or one per frame:
    ``lavis_vila.models.inference_styles``)."""

    @property
    def vit_dtype(self) -> torch.dtype:
        return self.visual_encoder.patch_embed.proj.weight.dtype

    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) pixels -> (B, T, N, C) ``ln_vision(ViT(frame))`` features."""
        return self.vision_features(self.vit_features(video))

    def vit_features(self, x: torch.Tensor, start_block: int = 0, stop_block: Optional[int] = None) -> torch.Tensor:
        """ViT blocks [start, stop) on every frame, without gradient: pixels (B, T, 3, H, W) when
        ``start_block`` is 0, else that block's input (B, T, N, C). Returns raw tokens (B, T, N, C).

        Only pixels are cast to the ViT's dtype: a block's input keeps its own, the residual dtype
        of a full pass (fp32 with an fp16 ViT, whose fp32 class token and positions promote it),
        so continuing from a block gives what the full pass gives."""
        batch_size, num_frames = x.shape[:2]
        x = x.flatten(0, 1)  # (B*T, ...)
        with torch.no_grad(), autocast_to(x.device, self.vit_dtype), stage(VIT):
            tokens = self.vit_blocks(x.to(self.vit_dtype) if start_block == 0 else x, start_block, stop_block)  # (B*T, N, C)
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
        """Instruction-aware Q-Former over every frame (as ``self.inference`` runs it).

        frames (B, F, N, C) -> LLM-space visual tokens (B, F*Q, D), frames in order. ``prefix``, a
        text such as SeViLA's "Frame {}: " (formatted with the 1-based frame number), puts its
        embedded tokens before each frame's: (B, F*(P+Q), D).
        """
        with stage(QFORMER):
            tokens = self.inference.frame_tokens(
                frames, lambda chunk: self._batched_frame_tokens(chunk, instruction, qformer, query_tokens, proj))
        return tokens if prefix is None else self.prefix_frames(tokens, frames.shape[1], prefix)

    def prefix_frames(self, tokens: torch.Tensor, num_frames: int, prefix: str) -> torch.Tensor:
        """(B, F*Q, D) -> (B, F*(P+Q), D): the embedded ``prefix.format(f)`` before frame f's tokens,
        in T5's encoder input dtype (``llm_input_dtype``), which neither part is cast below."""
        chunks = []
        for frame, frame_tokens in enumerate(tokens.chunk(num_frames, dim=1), start=1):
            ids = self.t5_tokenizer(prefix.format(frame), add_special_tokens=False, return_tensors="pt").input_ids
            words = self.t5_model.encoder.embed_tokens(ids.to(tokens.device))  # (1, P, D)
            chunks += [words.expand(tokens.shape[0], -1, -1).to(self.llm_input_dtype), frame_tokens.to(self.llm_input_dtype)]
        return torch.cat(chunks, dim=1)

    def _batched_frame_tokens(self, frames, instruction, qformer, query_tokens, proj) -> torch.Tensor:
        """One Q-Former call over frames (B, F, N, C) -> (B, F*Q, D)."""
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
