"""``run.resume: auto``: a training run killed at any moment and started again with the same command
continues from its newest complete checkpoint to the weights of a run that was never stopped.

The kills are real SIGKILLs, placed deterministically by ``tests/fixtures/killed_train.py`` (in the
middle of an epoch, inside a checkpoint write, during a validation); the tiny ViLA trains 3 epochs
of 4 steps on 16 synthetic clips, and validates on 4 (accuracy 25, 75, 25: the best epoch is not
the last). Each killed-and-restarted run starts the command twice: 11-17 s on 2 idle cores.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import REPO_ROOT, launch_in_process
from lavis_vila.datasets.synthetic import generate
from lavis_vila.runners.run_folder import FreshFolder, ResumableFolder, RunFolderError, differing_keys, run_folder

TRAIN_CFG = REPO_ROOT / "projects" / "vila" / "train" / "keyframe_qa_tiny_vila.yaml"
KILLED_TRAIN = REPO_ROOT / "tests" / "fixtures" / "killed_train.py"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "PYTHONPATH": str(REPO_ROOT)}
LAST_EPOCH = 2


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return generate(str(tmp_path_factory.mktemp("kq") / "keyframe_qa"), seed=1, num_train=16, num_val=4)


def arguments(data_dir, out, *extra):
    return ["--cfg-path", str(TRAIN_CFG), "--options", f"datasets.keyframe_qa.data_dir={data_dir}",
            f"run.output_dir={out}", f"run.max_epoch={LAST_EPOCH + 1}", "run.batch_size_train=4",
            "run.batch_size_eval=4", "run.warmup_steps=2", "run.log_freq=1", "run.resume=auto", *extra]


def start(data_dir, out, kill_at, flag):
    """One start of the command ``killed_train.py ARGS``: killed at ``kill_at`` the first time only."""
    env = {**ENV, "KILL_AT": kill_at, "KILL_ONCE_FLAG": str(flag)}
    return subprocess.run([sys.executable, str(KILLED_TRAIN), *arguments(data_dir, out)], capture_output=True,
                          text=True, env=env, cwd=REPO_ROOT)


def killed_then_restarted(data_dir, tmp_path, kill_at):
    """The same command twice: the first start is SIGKILLed at ``kill_at``, the second runs to the end."""
    out, flag = tmp_path / "run", tmp_path / "killed"
    first = start(data_dir, out, kill_at, flag)
    assert first.returncode == -9, first.stderr[-3000:]  # SIGKILL
    after_kill = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    second = start(data_dir, out, kill_at, flag)
    assert second.returncode == 0, second.stderr[-3000:]
    return out, after_kill, second.stdout + second.stderr


def train(data_dir, out, *extra):
    """``python -m lavis_vila.train``: runs whose weights are compared train in processes alike
    (one thread each), not in this test process."""
    result = subprocess.run([sys.executable, "-m", "lavis_vila.train", *arguments(data_dir, out, *extra)],
                            capture_output=True, text=True, env=ENV, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    return out, train(data_dir, out)


def weights(checkpoint) -> dict:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]


def assert_same_final_weights(out, uninterrupted_out):
    """The last epoch's and the best epoch's weights are the uninterrupted run's, to 1e-6."""
    for name in (f"checkpoint_{LAST_EPOCH}.pth", "checkpoint_best.pth"):
        expected, actual = weights(uninterrupted_out / name), weights(out / name)
        assert expected.keys() == actual.keys()
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=1e-6, msg=f"{name}: {key}")


def results(out, name):
    return json.loads((out / "result" / name).read_text())


def test_with_nothing_to_resume_a_run_starts_fresh_in_output_dir_itself_and_says_so(uninterrupted):
    out, log = uninterrupted
    assert f"run.resume: auto: no complete checkpoint in {out} to resume: starting fresh" in log
    assert (out / f"checkpoint_{LAST_EPOCH}.pth").is_file() and (out / "result" / "val_epochbest.json").is_file()
    assert not [p for p in out.iterdir() if p.is_dir() and p.name != "result"]  # no <job id> folder


def test_a_run_killed_mid_epoch_and_started_again_continues_from_its_last_checkpoint_to_the_same_weights(
        data_dir, tmp_path, uninterrupted):
    out, after_kill, log = killed_then_restarted(data_dir, tmp_path, "step:6")  # epoch 1, its second step
    assert "checkpoint_0.pth" in after_kill and "checkpoint_1.pth" not in after_kill
    assert f"run.resume: auto: resuming from checkpoint_0.pth, the newest complete checkpoint in {out}" in log
    assert_same_final_weights(out, uninterrupted[0])
    assert results(out, "val_epochbest.json") == results(uninterrupted[0], "val_epochbest.json")


def test_a_run_killed_inside_a_checkpoint_write_resumes_from_the_previous_checkpoint_to_the_same_weights(
        data_dir, tmp_path, uninterrupted):
    out, after_kill, log = killed_then_restarted(data_dir, tmp_path, "write:checkpoint_1.pth")
    partial = [name for name in after_kill if name.startswith("checkpoint_1.pth.tmp.")]
    assert partial and "checkpoint_1.pth" not in after_kill  # the kill landed inside the write
    assert f"removing {out / partial[0]}, a partial file a stopped run left" in log
    assert "resuming from checkpoint_0.pth" in log
    assert not list(out.rglob("*.tmp.*"))
    assert_same_final_weights(out, uninterrupted[0])


def test_a_truncated_checkpoint_is_never_resumed_the_previous_complete_one_is(data_dir, tmp_path, uninterrupted):
    out = tmp_path / "run"
    out.mkdir()
    shutil.copyfile(uninterrupted[0] / "checkpoint_0.pth", out / "checkpoint_0.pth")
    complete = (uninterrupted[0] / "checkpoint_1.pth").read_bytes()
    (out / "checkpoint_1.pth").write_bytes(complete[: len(complete) // 2])  # as a writer without a rename leaves it
    log = train(data_dir, out)
    assert f"not resuming from {out / 'checkpoint_1.pth'}: it does not load completely" in log
    assert "resuming from checkpoint_0.pth" in log
    assert_same_final_weights(out, uninterrupted[0])


def test_a_run_killed_during_an_epochs_validation_validates_that_epoch_when_started_again(
        data_dir, tmp_path, uninterrupted):
    out, after_kill, log = killed_then_restarted(data_dir, tmp_path, "validation:1")
    assert "checkpoint_1.pth" in after_kill and "result/val_epoch1.json" not in after_kill
    assert "resuming from checkpoint_1.pth" in log
    assert results(out, "val_epoch1.json") == results(uninterrupted[0], "val_epoch1.json")
    logged = [json.loads(line) for line in (out / "log.txt").read_text().splitlines() if line.startswith('{"val_')]
    assert [(entry["val_accuracy"], entry["val_best_epoch"]) for entry in logged][-2:] == [(75.0, 1), (25.0, 1)]
    assert_same_final_weights(out, uninterrupted[0])
    assert results(out, "val_epochbest.json") == results(uninterrupted[0], "val_epochbest.json")


def test_after_a_resume_from_the_best_epoch_the_final_evaluation_uses_the_best_epoch_not_the_last(
        data_dir, tmp_path, uninterrupted):
    best_epoch_checkpoint = uninterrupted[0] / "checkpoint_1.pth"
    assert [results(uninterrupted[0], f"val_epoch{epoch}_metrics.json")["accuracy"] for epoch in (1, 2)] == [75.0, 25.0]
    train(data_dir, tmp_path / "out", "run.resume=off", f"run.resume_ckpt_path={best_epoch_checkpoint}")
    (job,) = (tmp_path / "out").iterdir()
    assert results(job, "val_epochbest.json") == results(uninterrupted[0], "val_epochbest.json")
    assert results(job, "val_epochbest_metrics.json")["accuracy"] == 75.0
    assert results(job, "val_epochbest_metrics.json")["evaluated_weights"]["checkpoint"] == str(job / "checkpoint_best.pth")


def test_a_checkpoint_of_another_model_config_is_refused_naming_the_difference_and_nothing_is_written(
        data_dir, tmp_path, uninterrupted):
    out = tmp_path / "run"
    out.mkdir()
    shutil.copyfile(uninterrupted[0] / "checkpoint_0.pth", out / "checkpoint_0.pth")
    before = (out / "checkpoint_0.pth").read_bytes()
    result = launch_in_process("lavis_vila.train", arguments(data_dir, out, "model.distill_weight=0.5"))
    assert result.returncode == 1
    assert f"run.output_dir: '{out / 'checkpoint_0.pth'}' is a checkpoint of another model config" in result.stderr
    assert "model.distill_weight: 0.5 here, 0.01 in the checkpoint" in result.stderr
    assert (out / "checkpoint_0.pth").read_bytes() == before
    assert not (out / "log.txt").exists() and not (out / "checkpoint_1.pth").exists()


def test_a_second_run_into_a_folder_another_run_is_training_in_is_refused(data_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (  # holds the lock a running training holds
        f"import fcntl, sys, time\nf = open({str(out / 'run.lock')!r}, 'a+')\n"
        "fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\nprint('held', flush=True)\ntime.sleep(120)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = launch_in_process("lavis_vila.train", arguments(data_dir, out))
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert f"run.output_dir: another run is training in '{out}'" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["run.lock"]


def test_resume_auto_and_a_resume_checkpoint_together_are_an_error(data_dir, tmp_path):
    result = launch_in_process("lavis_vila.train", arguments(data_dir, tmp_path / "run", "run.resume_ckpt_path=x.pth"))
    assert result.returncode == 1
    assert "run.resume: auto and run.resume_ckpt_path (x.pth) are both set" in result.stderr


def without_trainable_weights(checkpoint, path):
    """A copy of the training checkpoint ``checkpoint`` at ``path`` whose weights are all left out."""
    loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
    torch.save({**loaded, "model": {}}, path)
    return path


def test_an_unusable_resume_checkpoint_chosen_by_resume_auto_is_an_error_naming_resume_auto_and_the_folder(
        data_dir, tmp_path, uninterrupted):
    out = tmp_path / "run"
    out.mkdir()
    chosen = without_trainable_weights(uninterrupted[0] / "checkpoint_0.pth", out / "checkpoint_0.pth")
    result = launch_in_process("lavis_vila.train", arguments(data_dir, out))
    assert result.returncode == 1
    assert f"run.resume: auto (newest checkpoint in {out}): '{chosen}' lacks trainable parameters" in result.stderr


def test_an_unusable_resume_checkpoint_set_in_resume_ckpt_path_is_an_error_naming_that_key(
        data_dir, tmp_path, uninterrupted):
    chosen = without_trainable_weights(uninterrupted[0] / "checkpoint_0.pth", tmp_path / "checkpoint_0.pth")
    result = launch_in_process("lavis_vila.train", arguments(
        data_dir, tmp_path / "out", "run.resume=off", f"run.resume_ckpt_path={chosen}"))
    assert result.returncode == 1
    assert f"run.resume_ckpt_path: '{chosen}' lacks trainable parameters" in result.stderr
    assert "run.resume: auto" not in result.stderr


@pytest.mark.slow  # five interpreters start: 13 s on 2 idle cores, over 30 s on busy ones
def test_torchrun_max_restarts_finishes_a_run_whose_worker_was_killed_once_resuming_by_itself(data_dir, tmp_path):
    out, flag = tmp_path / "run", tmp_path / "killed"
    env = {**ENV, "KILL_AT": "step:3", "KILL_RANK": "1", "KILL_ONCE_FLAG": str(flag)}  # 2 steps per epoch per rank
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--max-restarts=1",
               str(KILLED_TRAIN), *arguments(data_dir, out)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert flag.exists() and "exitcode: -9" in result.stderr  # rank 1 was killed once
    logged = [json.loads(line) for line in (out / "log.txt").read_text().splitlines() if line.startswith('{"resumed_')]
    assert logged == [{"resumed_from": str(out / "checkpoint_0.pth"), "resumed_next_epoch": 1}]
    assert (out / f"checkpoint_{LAST_EPOCH}.pth").is_file() and len(results(out, "val_epochbest.json")) == 4


def test_resume_off_or_yamls_bare_off_keeps_lavis_new_folder_per_start_and_another_value_is_an_error(tmp_path):
    for off in ("off", False, None):
        folder = run_folder(off, str(tmp_path), "20260101_abc")
        assert isinstance(folder, FreshFolder) and folder.path == tmp_path / "20260101_abc"
    assert run_folder("auto", str(tmp_path), "20260101_abc").path == tmp_path
    with pytest.raises(RunFolderError, match=r"run.resume must be one of \['auto', 'off'\], got 'always'"):
        run_folder("always", str(tmp_path), "20260101_abc")


def test_starting_a_resumable_folder_removes_only_the_partial_files_of_its_writers(tmp_path):
    kept = ["notes.tmp.txt", "checkpoint_0.pth", "result/val_epoch0.json", "data.tmp.12"]
    removed = ["checkpoint_1.pth.tmp.4242", "config.json.tmp.7", "result/val_epoch1.json.tmp.4242"]
    for name in kept + removed:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    folder = ResumableFolder(tmp_path, "unused")
    folder.claim()
    folder.release()
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == sorted(kept + ["run.lock"])


def test_differing_model_keys_are_named_with_their_dotted_path_and_both_values():
    ours = {"arch": "vila", "prompter_options": {"scorer": "frame"}, "num_selected_frames": 2}
    theirs = {"arch": "vila", "prompter_options": {"scorer": "segment"}}
    assert differing_keys(ours, theirs) == ["model.num_selected_frames: 2 here, '<absent>' in the checkpoint",
                                            "model.prompter_options.scorer: 'frame' here, 'segment' in the checkpoint"]


def test_an_evaluation_never_resumes_it_writes_a_new_job_folder_even_under_resume_auto(data_dir, tmp_path, uninterrupted):
    out = tmp_path / "run"
    result = launch_in_process("lavis_vila.evaluate", arguments(
        data_dir, out, "model.load_finetuned=True", f"model.finetuned={uninterrupted[0] / f'checkpoint_{LAST_EPOCH}.pth'}"))
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = out.iterdir()
    assert job.name != "result" and (job / "result" / "val_epochbest.json").is_file()
    assert "run.resume: auto" not in result.stderr
