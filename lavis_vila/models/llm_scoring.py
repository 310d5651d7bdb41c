"""The frozen T5 reading LLM-space visual tokens: the answer loss in training, option scores at
evaluation.

The encoder reads [visual tokens ; T5-embedded instruction]. Training is teacher-forced
cross-entropy of the target text ("Option X"); evaluation reads the logits of the letter after
the answer prefix ("Option"), one per option, so a prediction is always a valid option.

Shapes: B batch, M visual tokens, L instruction tokens, D LLM width, V vocab.
"""
from functools import cached_property
from typing import Optional

import torch
import torch.nn.functional as F
from transformers import BatchEncoding

from lavis_vila.models.precision import autocast_to
from lavis_vila.models.stage_timing import LLM, stage
from lavis_vila.prompts import ANSWER_PREFIX, OPTION_LETTERS, answer_text


class LLMScoring:
    """Mixin of ``VideoInstructModel``: reads its ``t5_model``, ``t5_tokenizer``, ``max_txt_len``,
    ``max_output_txt_len``, ``truncate_eval_prompt``, ``llm_compute_dtype`` (T5's autocast
    region), ``llm_input_dtype`` (its encoder input's) and ``inference`` (how the next-token
    logits are computed: ``lavis_vila.models.inference_styles``)."""

    def _t5_tokenize(self, texts, max_length: Optional[int], device):
        """Truncated to ``max_length`` tokens on the tokenizer's ``truncation_side`` (left for ViLA, right for
        SeViLA's ``t5_truncation_side``); ``None``: not truncated. Each distinct text is tokenized once
        and its row repeated where it repeats (SeViLA's localizer asks each video's question once per
        frame; targets like "Option A" repeat in a batch): the ids and mask of tokenizing every text."""
        distinct = {}  # text -> its row in the tokenized batch, in order of first appearance
        rows = [distinct.setdefault(text, len(distinct)) for text in texts]
        encoding = self.t5_tokenizer(
            list(distinct), padding="longest", truncation=max_length is not None, max_length=max_length,
            return_tensors="pt",
        )
        if len(distinct) < len(rows):
            encoding = BatchEncoding({key: value[torch.tensor(rows)] for key, value in encoding.items()})
        return encoding.to(device)

    def _llm_encoder_inputs(self, visual_tokens: torch.Tensor, qa_input, max_length: Optional[int]):
        """[visual tokens (B, M, D) ; T5-embedded instruction] -> inputs_embeds (B, M + L, D) in
        ``llm_input_dtype``, and the mask. Both parts are cast first: CUDA's autocast would promote
        fp16 tokens and bf16 embeddings to fp32, CPU's refuses to concatenate them."""
        text = self._t5_tokenize(qa_input, max_length, visual_tokens.device)
        text_embeds = self.t5_model.encoder.embed_tokens(text.input_ids)  # (B, L, D)
        inputs_embeds = torch.cat([visual_tokens.to(self.llm_input_dtype), text_embeds.to(self.llm_input_dtype)], dim=1)
        visual_mask = torch.ones(visual_tokens.shape[:2], dtype=text.attention_mask.dtype, device=visual_tokens.device)
        return inputs_embeds, torch.cat([visual_mask, text.attention_mask], dim=1)

    def answer_loss(self, visual_tokens: torch.Tensor, qa_input, qa_output) -> torch.Tensor:
        """Teacher-forced T5 cross-entropy of the target text ("Option X"), mean over tokens.

        T5 gets the decoder input that ``labels`` would make (the target shifted right), not the
        labels themselves, so it computes no loss of its own; this one is computed once, in fp32."""
        target = self._t5_tokenize(qa_output, self.max_output_txt_len, visual_tokens.device)
        labels = target.input_ids.masked_fill(target.input_ids == self.t5_tokenizer.pad_token_id, -100)
        with autocast_to(visual_tokens.device, self.llm_compute_dtype):
            inputs_embeds, attention_mask = self._llm_encoder_inputs(visual_tokens, qa_input, self.max_txt_len)
            output = self.t5_model(
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                decoder_input_ids=self.t5_model.prepare_decoder_input_ids_from_labels(labels=labels),
                decoder_attention_mask=target.attention_mask,
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
        """(B, V) float logits of the token after decoder prefix ``prefix_ids`` ([start, ...]),
        from [visual tokens ; text], as ``self.inference`` computes them."""
        device = visual_tokens.device
        with autocast_to(device, self.llm_compute_dtype), stage(LLM):
            max_length = self.max_txt_len if self.truncate_eval_prompt else None
            inputs_embeds, attention_mask = self._llm_encoder_inputs(visual_tokens, text, max_length)
            return self.inference.next_token_logits(self.t5_model, inputs_embeds, attention_mask, prefix_ids.to(device))

    def option_scores(self, visual_tokens: torch.Tensor, qa_input, num_option) -> torch.Tensor:
        """Letter logits after the answer prefix: (B, 5) scores for A..E, -inf past each ``num_option``
        (checked by ``predict_answers``, which reads it back with the prediction)."""
        device = visual_tokens.device
        logits = self.next_token_logits(visual_tokens, qa_input, self.answer_prefix_ids)  # (B, V)
        letter_logits = logits[:, self.option_letter_ids.to(device)]  # (B, 5)
        num_option = torch.as_tensor(num_option, device=device).reshape(-1, 1)  # read on the device: no host sync
        valid = torch.arange(len(OPTION_LETTERS), device=device) < num_option
        return letter_logits.masked_fill(~valid, float("-inf"))
