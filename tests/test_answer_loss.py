"""The answer loss: T5 is called once, without ``labels``, so it computes no second loss, and the
loss is the one T5 computes itself from those labels."""
import pytest
import torch

from conftest import tiny_batch
from lavis_vila.models import build_model


@pytest.mark.parametrize("arch", ["vila_uniform", "vila_lora"])
def test_t5_is_called_without_labels_and_the_answer_loss_equals_t5s_own_loss_with_them(arch):
    model = build_model(arch, "tiny", **({} if arch == "vila_uniform" else {"distill_weight": 0})).eval()  # no dropout
    batch = tiny_batch(2 if arch == "vila_uniform" else 16)
    calls = []
    hook = model.t5_model.register_forward_pre_hook(lambda m, args, kwargs: calls.append(kwargs), with_kwargs=True)
    student = model.student_pass(batch)
    loss = model.answer_loss(student.tokens, batch["qa_input"], batch["qa_output"])
    hook.remove()
    assert len(calls) == 1 and calls[0].get("labels") is None
    target = model.t5_tokenizer(batch["qa_output"], padding="longest", return_tensors="pt")
    labels = target.input_ids.masked_fill(target.input_ids == model.t5_tokenizer.pad_token_id, -100)
    with torch.no_grad():
        own = model.t5_model(inputs_embeds=calls[0]["inputs_embeds"], attention_mask=calls[0]["attention_mask"],
                             decoder_attention_mask=target.attention_mask, labels=labels, return_dict=True).loss
    torch.testing.assert_close(loss, own, rtol=0, atol=1e-6)
