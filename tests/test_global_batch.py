"""The recipe's global batch, whatever the GPU count: per-GPU batch x GPUs x accumulation steps."""
import logging

import pytest
from omegaconf import OmegaConf

from conftest import REPO_ROOT
from lavis_vila.tasks.global_batch import BatchSplit, apply_global_batch, split_global_batch

GPU_TRAIN_CONFIGS = sorted(p for p in (REPO_ROOT / "projects" / "vila" / "train").glob("*.yaml")
                           if not p.name.startswith("keyframe_qa"))


@pytest.mark.parametrize("global_batch, gpus, max_per_gpu, expected", [
    (64, 4, 4, BatchSplit(4, 4, 4)),  # ViLA stage 2: the official 4 per GPU x 4 GPUs x 4 steps
    (64, 8, 4, BatchSplit(4, 2, 8)),  # twice the GPUs: half the accumulation, same global batch
    (64, 1, 4, BatchSplit(4, 16, 1)),
    (56, 8, 2, BatchSplit(1, 7, 8)),  # NExT-QA's teacher (7 GPUs officially) on 8
    (64, 8, 16, BatchSplit(8, 1, 8)),  # a larger allowance never exceeds the recipe
])
def test_the_split_reaches_the_recipes_global_batch_exactly(global_batch, gpus, max_per_gpu, expected):
    split = split_global_batch(global_batch, gpus, max_per_gpu)
    assert split == expected and split.global_batch == global_batch and split.per_gpu <= max_per_gpu


def test_a_gpu_count_that_cannot_reach_it_is_said_and_the_nearest_is_used(caplog):
    run = OmegaConf.create({"global_batch_size": 64, "batch_size_train": 4})
    with caplog.at_level(logging.INFO):
        split = apply_global_batch(run, world_size=3)
    assert split == BatchSplit(4, 5, 3) and (run.batch_size_train, run.accum_grad_iters) == (4, 5)
    assert "global batch 60 = 3 process(es) x 4 per process x 5 accumulation step(s)" in caplog.text
    assert "run.global_batch_size 64 cannot be reached exactly with 3 process(es)" in caplog.text


def test_without_a_recipe_the_configured_batch_is_kept_and_logged(caplog):
    run = OmegaConf.create({"batch_size_train": 8, "accum_grad_iters": 2})
    with caplog.at_level(logging.INFO):
        assert apply_global_batch(run, world_size=2) == BatchSplit(8, 2, 2)
    assert run.batch_size_train == 8 and "global batch 32 = 2 process(es) x 8 per process x 2" in caplog.text


@pytest.mark.parametrize("config", GPU_TRAIN_CONFIGS, ids=lambda p: p.name)
@pytest.mark.parametrize("gpus", [4, 8])
def test_every_gpu_train_config_gets_its_recipes_global_batch_on_4_or_8_gpus(config, gpus):
    run = OmegaConf.load(config).run
    assert run.global_batch_size in (32, 56, 64) and "accum_grad_iters" not in run
    split = apply_global_batch(run, world_size=gpus)
    assert split.global_batch == run.global_batch_size and split.per_gpu <= OmegaConf.load(config).run.batch_size_train
