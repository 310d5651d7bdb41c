"""The recipe's global batch and warm-up, whatever the GPU count: per-GPU batch x GPUs x accumulation
steps, and warm-up iterations that cover the official run's number of samples."""
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


# The official run each benchmark config follows (per GPU, GPUs, accumulation steps, warm-up iterations), from the
# official scripts (xijun-cs/ViLA run_scripts, re_weight.py; SeViLA's run_scripts/sevila): research/paper.md 3.2.
SEVILA_REFINEMENT, SEVILA_ANSWERER = (16, 4, 1, 500), (8, 4, 2, 1000)
OFFICIAL_RUNS = {
    "how2qa_student_4f": (8, 4, 2, 500), "how2qa_teacher_8f": (4, 4, 2, 1400), "how2qa_vila_8to4": (4, 4, 4, 1200),
    "nextqa_student_4f": (8, 4, 1, 500), "nextqa_teacher_32f": (2, 7, 4, 500), "nextqa_vila_32to4": (4, 4, 4, 500),
    "nextqa_vila_32to4_lora": (2, 8, 4, 500),
    "star_student_4f": (8, 4, 2, 1000), "star_teacher_32f": (2, 8, 4, 500), "star_vila_32to4": (4, 4, 4, 500),
    "tvqa_student_4f": (8, 4, 2, 1000), "tvqa_teacher_32f": (2, 8, 4, 500), "tvqa_vila_32to4": (4, 4, 4, 500),
    "vlep_student_4f": (16, 4, 2, 1000), "vlep_teacher_32f": (2, 8, 4, 500), "vlep_vila_32to4": (4, 4, 4, 1000),
    **{f"{b}_sevila_localizer": SEVILA_REFINEMENT for b in ("nextqa", "star", "how2qa", "tvqa", "vlep")},
    **{f"{b}_sevila_answerer": SEVILA_ANSWERER for b in ("nextqa", "star", "how2qa", "tvqa", "vlep")},
}


def test_every_gpu_train_config_has_its_official_run():
    assert sorted(p.stem for p in GPU_TRAIN_CONFIGS) == sorted(OFFICIAL_RUNS)


@pytest.mark.parametrize("config", GPU_TRAIN_CONFIGS, ids=lambda p: p.name)
@pytest.mark.parametrize("gpus", [4, 8])
def test_every_gpu_train_config_gets_the_official_global_batch_on_4_or_8_gpus(config, gpus):
    per_gpu, official_gpus, accum, _ = OFFICIAL_RUNS[config.stem]
    run = OmegaConf.load(config).run
    assert run.global_batch_size == per_gpu * official_gpus * accum and "accum_grad_iters" not in run
    split = apply_global_batch(run, world_size=gpus)
    assert split.global_batch == run.global_batch_size and split.per_gpu <= OmegaConf.load(config).run.batch_size_train


@pytest.mark.parametrize("config", GPU_TRAIN_CONFIGS, ids=lambda p: p.name)
@pytest.mark.parametrize("gpus", [4, 8])
def test_every_gpu_train_configs_warmup_covers_the_official_runs_samples_within_one_iteration(config, gpus):
    per_gpu, official_gpus, _, official_iterations = OFFICIAL_RUNS[config.stem]
    run = OmegaConf.load(config).run
    split = apply_global_batch(run, world_size=gpus)
    covered = run.warmup_steps * split.per_gpu * gpus  # LAVIS's scheduler steps once per micro-batch
    assert abs(covered - official_iterations * per_gpu * official_gpus) <= split.per_gpu * gpus


def test_warmup_in_samples_halves_the_iterations_on_twice_the_gpus_and_is_logged(caplog):
    runs = [OmegaConf.create({"global_batch_size": 64, "batch_size_train": 4, "warmup_samples": 8000}) for _ in range(2)]
    with caplog.at_level(logging.INFO):
        apply_global_batch(runs[0], world_size=4)
        apply_global_batch(runs[1], world_size=8)
    assert (runs[0].warmup_steps, runs[1].warmup_steps) == (500, 250)
    assert "global batch 64 = 8 process(es) x 4 per process x 2 accumulation step(s); warm-up 250 iteration(s) = " \
           "8000 samples (run.warmup_samples 8000)" in caplog.text


def test_warmup_steps_and_warmup_samples_that_disagree_are_refused():
    run = OmegaConf.create({"global_batch_size": 64, "batch_size_train": 4, "warmup_samples": 8000, "warmup_steps": 500})
    with pytest.raises(ValueError, match=r"run.warmup_samples \(8000\) and run.warmup_steps \(500\) are both set"):
        apply_global_batch(run, world_size=8)


def test_without_warmup_samples_the_iterations_are_kept_and_their_samples_logged(caplog):
    run = OmegaConf.create({"batch_size_train": 8, "warmup_steps": 20})
    with caplog.at_level(logging.INFO):
        apply_global_batch(run, world_size=2)
    assert run.warmup_steps == 20 and "warm-up 20 iteration(s) = 320 samples" in caplog.text
