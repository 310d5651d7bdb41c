import pytest
import torch

from conftest import tiny_batch, train_step
from lavis_vila.models import build_model


@pytest.mark.slow
def test_tiny_vila_overfits_eight_clips_with_only_its_trainable_parts_learning():
    torch.manual_seed(0)
    model = build_model("vila", "tiny").train()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    batch = tiny_batch(16, batch_size=8)  # eight clips, answers A, B, C, D, A, ...
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    answers = [i % 4 for i in range(8)]
    losses, predictions = [], None
    for step in range(300):
        losses.append(train_step(model, optimizer, batch))
        if step % 25 == 24:
            predictions = model.eval().predict_answers(batch)["prediction"]
            if losses[-1] < 0.2 * losses[0] and predictions == answers:
                break
    assert losses[-1] < 0.2 * losses[0], f"loss went from {losses[0]:.3f} to {losses[-1]:.3f} in 300 steps"
    assert predictions == answers
    for name, param in model.named_parameters():
        if name in frozen:
            assert torch.equal(param, frozen[name]), f"{name} changed"
