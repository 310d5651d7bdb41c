import json
import shutil
from pathlib import Path

import pytest
import torch
from lavis.common.optims import LinearWarmupCosineLRScheduler

from conftest import REPO_ROOT, launch_in_process
from lavis_vila.datasets.synthetic import generate
from lavis_vila.runners.vila_runner import ScaledLRScheduler


def test_lr_scales_multiply_the_scheduled_learning_rate_of_their_group():
    base, prompter = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([{"params": [base], "lr_scale": 1.0}, {"params": [prompter], "lr_scale": 3.0}], lr=1e-3)
    scheduler = ScaledLRScheduler(LinearWarmupCosineLRScheduler(optimizer, max_epoch=2, min_lr=0.0, init_lr=1e-3), optimizer)
    scheduler.step(cur_epoch=0, cur_step=0)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 3e-3]
    scheduler.step(cur_epoch=1, cur_step=0)  # cosine halfway: 0.5e-3, scaled every step, never compounded
    assert [g["lr"] for g in optimizer.param_groups] == [5e-4, 1.5e-3]


# ---------------------------------------------------------------- runs that would train nothing, or not as asked

TRAIN_CFG = REPO_ROOT / "projects" / "vila" / "train" / "keyframe_qa_tiny_vila.yaml"


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """8 training clips and 2 validation clips of keyframe_qa."""
    return Path(generate(str(tmp_path_factory.mktemp("kq") / "keyframe_qa"), seed=3, num_train=8, num_val=2))


def train(data, out, *options):
    return launch_in_process("lavis_vila.train", [
        "--cfg-path", TRAIN_CFG, "--options", f"datasets.keyframe_qa.data_dir={data}", f"run.output_dir={out}",
        "run.max_epoch=1", "run.batch_size_train=4", "run.batch_size_eval=2", "run.warmup_steps=1", *options])


def written_files(out: Path) -> list:
    return sorted(p.name for p in out.rglob("*") if p.is_file())


def test_max_epoch_zero_is_an_error_not_an_evaluation_of_a_random_model(small_data, tmp_path):
    result = train(small_data, tmp_path, "run.max_epoch=0")
    assert result.returncode == 1
    assert "run.max_epoch is 0: this run would train nothing. To evaluate a model, run python -m lavis_vila.evaluate" \
        in result.stderr
    assert written_files(tmp_path) == []  # no val_epoch-1 results


@pytest.mark.parametrize("resume", ["run.resume_ckpt_path", "run.resume=auto"])
def test_a_run_that_would_train_nothing_stops_before_reading_a_checkpoint_to_resume(small_data, tmp_path, monkeypatch,
                                                                                     resume):
    from lavis_vila.runners import run_folder, vila_runner

    checkpoint = tmp_path / "out" / "checkpoint_0.pth"  # what either setting would resume from
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"a multi-GB checkpoint")
    read = []
    for module in (run_folder, vila_runner):
        monkeypatch.setattr(module, "load_checkpoint_file", lambda source, *args, **kwargs: read.append(source))
    option = f"run.resume_ckpt_path={checkpoint}" if resume == "run.resume_ckpt_path" else resume
    result = train(small_data, checkpoint.parent, "run.max_epoch=0", option)
    assert result.returncode == 1
    assert "run.max_epoch is 0: this run would train nothing" in result.stderr
    assert read == []


def test_a_training_split_smaller_than_one_batch_is_an_error_naming_its_size_and_the_batch(small_data, tmp_path):
    result = train(small_data, tmp_path, "run.batch_size_train=9")
    assert result.returncode == 1
    assert ("the training split has 8 records, fewer than one batch of run.batch_size_train 9 per process x 1 "
            "process(es)") in result.stderr
    assert "ZeroDivisionError" not in result.stderr


def test_an_lr_scales_prefix_that_matches_no_trainable_parameter_is_an_error_naming_it(small_data, tmp_path):
    result = train(small_data, tmp_path, "run.lr_scales={frame_promter: 3.0}")
    assert result.returncode == 1
    assert "run.lr_scales: ['frame_promter'] applies to no trainable parameter of ViLA" in result.stderr
    assert "'frame_prompter'" in result.stderr  # the trainable prefixes are listed
    assert not list(tmp_path.rglob("checkpoint_*.pth"))


def test_a_training_record_with_a_nan_start_alone_stops_before_training_naming_the_file_and_record(small_data, tmp_path):
    data = tmp_path / "keyframe_qa"
    shutil.copytree(small_data, data)
    records = json.loads((data / "train.json").read_text())
    records[0]["start"] = float("nan")  # written as NaN, which json reads back; a NaN end would mean the whole clip
    (data / "train.json").write_text(json.dumps(records))
    result = train(data, tmp_path / "out", "run.batch_size_train=8")
    assert result.returncode == 1
    assert f"{data / 'train.json'}: record 0 (qid {records[0]['qid']}): start is NaN but the other bound is not" \
        in result.stderr
    assert "ValueError: cannot convert float NaN" not in result.stderr
    assert not list((tmp_path / "out").rglob("checkpoint_*.pth"))