import torch
from lavis.common.optims import LinearWarmupCosineLRScheduler

from lavis_vila.runners.vila_runner import ScaledLRScheduler


def test_lr_scales_multiply_the_scheduled_learning_rate_of_their_group():
    base, prompter = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([{"params": [base], "lr_scale": 1.0}, {"params": [prompter], "lr_scale": 3.0}], lr=1e-3)
    scheduler = ScaledLRScheduler(LinearWarmupCosineLRScheduler(optimizer, max_epoch=2, min_lr=0.0, init_lr=1e-3), optimizer)
    scheduler.step(cur_epoch=0, cur_step=0)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 3e-3]
    scheduler.step(cur_epoch=1, cur_step=0)  # cosine halfway: 0.5e-3, scaled every step, never compounded
    assert [g["lr"] for g in optimizer.param_groups] == [5e-4, 1.5e-3]
