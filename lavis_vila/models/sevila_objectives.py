"""What ``sevila_baseline`` trains: SeViLA's two steps, one objective each, chosen at construction
by the config key ``train_localizer``.

- ``AnswererTraining`` (``train_localizer: False``, the default): the answerer trains on the
  frozen localizer's keyframes (SeViLA's fine-tuning), with the student path's answer loss.
- ``LocalizerRefinement`` (``train_localizer: True``), self-refinement: the frozen answerer
  answers from each candidate frame alone; the frames it gets right are pseudo-labelled "yes",
  the others "no", and the localizer learns to say so (T5 cross-entropy). Its checkpoints hold
  the localizer only; ``tools.sevila_weights`` joins them with the answerer's.

Each says which parts it freezes (``frozen_parts``; ``frozen_qformer`` is the frozen branch's
Q-Former, kept in eval mode only with the model's ``frozen_branch_dropout: False``: SeViLA's code
leaves it in train mode, dropout on) and computes the loss dict of a batch (``losses``).

Shapes: B batch, T candidate frames, N ViT tokens per frame, C ViT width, P prefix tokens,
Q query tokens, D LLM width.
"""
import torch

KEYFRAME, NOT_KEYFRAME = "yes", "no"  # the localizer's answers: its score is the logit of KEYFRAME


class AnswererTraining:
    def frozen_parts(self, model) -> list:
        return model.localizer_parts()

    def frozen_qformer(self, model):
        return model.Qformer_loc

    def losses(self, model, samples: dict, temperature: float) -> dict:
        return model.losses(model.student_pass(samples, temperature), samples)


class LocalizerRefinement:
    def frozen_parts(self, model) -> list:
        return model.answerer_parts()

    def frozen_qformer(self, model):
        return model.Qformer  # the frozen answerer that labels

    def losses(self, model, samples: dict, temperature: float) -> dict:
        vit_tokens = model.vit_features(samples["video"])  # (B, T, N, C)
        frames = model.vision_features(vit_tokens)
        labels = self.pseudo_labels(model, frames, samples)
        loss = self.localizer_loss(model, model.localizer_features(vit_tokens, frames), samples, labels)
        return {"loss": loss, "loss_localizer": loss, "keyframe_fraction": labels.float().mean()}

    @torch.no_grad()
    def pseudo_labels(self, model, frames: torch.Tensor, samples: dict) -> torch.Tensor:
        """SeViLA's self-refinement labels: (B, T) True where the frozen answerer, shown that frame
        alone, picks the right option ("keyframe: yes")."""
        batch_size, num_frames = frames.shape[:2]
        per_frame = frames.flatten(0, 1)[:, None]  # (B*T, 1, N, C)
        qa_input = [text for text in samples["qa_input"] for _ in range(num_frames)]
        instruction = model.tokenize_instruction(qa_input)
        tokens = model.frame_tokens(per_frame, instruction, model.Qformer, model.query_tokens, model.t5_proj,
                                    model.single_frame_prefix)  # (B*T, P+Q, D)
        num_option = torch.as_tensor(samples["num_option"]).repeat_interleave(num_frames)
        prediction = model.option_scores(tokens, qa_input, num_option).argmax(-1).reshape(batch_size, num_frames)
        return prediction == torch.as_tensor(samples["answer"], device=prediction.device)[:, None]

    def localizer_loss(self, model, frames: torch.Tensor, samples: dict, labels: torch.Tensor) -> torch.Tensor:
        """T5 cross-entropy of "yes"/"no" (``labels`` (B, T)) for every frame judged on its own."""
        per_frame, per_frame_text = model.localizer_tokens(frames, samples)
        targets = [KEYFRAME if label else NOT_KEYFRAME for label in labels.flatten().tolist()]
        return model.answer_loss(per_frame, per_frame_text, targets)


def objective(train_localizer: bool):
    return LocalizerRefinement() if train_localizer else AnswererTraining()
