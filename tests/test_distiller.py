"""QFormer-Distiller: a token-axis decoder (Linear Q*K -> Q*T, then LayerNorm over the Q*T tokens)
and an MSE against the teacher's tokens (paper §3.3, Table 5's best variant)."""
import pytest
import torch

from lavis_vila.models.distiller import QFormerDistiller

STUDENT = torch.linspace(-1, 1, 2 * 4 * 3).reshape(2, 4, 3)  # (B, Q*K, D)
TEACHER = torch.linspace(1, -1, 2 * 8 * 3).reshape(2, 8, 3)  # (B, Q*T, D)


def seeded_distiller():
    torch.manual_seed(0)
    return QFormerDistiller(student_tokens=4, teacher_tokens=8)


def test_distillation_loss_on_fixed_inputs_matches_the_recorded_value():
    assert seeded_distiller()(STUDENT, TEACHER).item() == pytest.approx(1.7131141, rel=1e-5)


def test_decoder_stretches_the_token_axis_and_normalises_over_tokens_not_channels():
    distiller = seeded_distiller()
    decoded = distiller.decoder(STUDENT.transpose(1, 2)).transpose(1, 2)  # (B, Q*T, D)
    assert decoded.shape == TEACHER.shape
    torch.testing.assert_close(decoded.mean(dim=1), torch.zeros(2, 3), atol=1e-5, rtol=0)  # per channel, over tokens
    assert decoded.mean(dim=2).abs().max() > 0.1  # not over channels


def test_the_loss_is_the_mean_squared_error_to_the_teacher():
    distiller = seeded_distiller()
    decoded = distiller.decoder(STUDENT.transpose(1, 2)).transpose(1, 2)
    assert distiller(STUDENT, TEACHER).item() == pytest.approx(((decoded - TEACHER) ** 2).mean().item(), rel=1e-6)


def test_the_loss_passes_gradients_to_the_decoder_the_student_and_a_teacher_that_requires_them():
    distiller = seeded_distiller()
    student, teacher = STUDENT.clone().requires_grad_(), TEACHER.clone().requires_grad_()
    distiller(student, teacher).backward()
    assert student.grad.abs().sum() > 0 and distiller.decoder[0].weight.grad.abs().sum() > 0
    assert teacher.grad.abs().sum() > 0  # the model passes the teacher under no_grad; the loss itself is symmetric


def vila_runner_optimizer(model, **run):
    """``vila_runner``'s optimizer for ``model`` under the run keys ``run``."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from lavis_vila.runners.vila_runner import VilaRunner

    config = SimpleNamespace(run_cfg=OmegaConf.create({"init_lr": 1e-4, "weight_decay": 0.05, **run}))
    return VilaRunner.optimizer.fget(SimpleNamespace(_optimizer=None, model=model, config=config))


def weight_decay_of(optimizer, param) -> float:
    return next(group["weight_decay"] for group in optimizer.param_groups if any(p is param for p in group["params"]))


@pytest.mark.parametrize("naming, decay", [({}, 0.0), ({"weight_decay_names": "ours"}, 0.05)])
def test_the_distillers_linear_gets_no_weight_decay_as_the_official_dist_fc_bn(naming, decay):
    from lavis_vila.models import build_model

    model = build_model("vila", "tiny")
    optimizer = vila_runner_optimizer(model, **naming)
    assert weight_decay_of(optimizer, model.distiller.decoder[0].weight) == decay
    assert weight_decay_of(optimizer, model.frame_prompter.pool.weight) == 0.05  # official fs.conv_pool decays
    assert weight_decay_of(optimizer, model.t5_proj.weight) == 0.05
    assert weight_decay_of(optimizer, model.distiller.decoder[0].bias) == 0.0


def test_an_unknown_weight_decay_naming_is_an_error_naming_the_key():
    from lavis_vila.runners.weight_decay import gets_weight_decay

    with pytest.raises(ValueError, match="run.weight_decay_names must be one of official, ours, got 'mine'"):
        gets_weight_decay("t5_proj.weight", torch.nn.Parameter(torch.zeros(2, 2)), "mine")
