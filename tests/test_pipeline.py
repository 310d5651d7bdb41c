"""End-to-end runs of the real launchers on the tiny models and a small keyframe_qa."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import CORRUPTED, PANCAKE, REPO_ROOT, launch_in_process
from lavis_vila.datasets.synthetic import event_frame_seen, generate
from lavis_vila.tools import compare, explain, selection_trace

pytestmark = pytest.mark.slow
TRAIN_CFG = REPO_ROOT / "projects" / "vila" / "train" / "keyframe_qa_tiny_vila.yaml"
EVAL_CFG = REPO_ROOT / "projects" / "vila" / "eval" / "keyframe_qa_tiny_vila_eval.yaml"
UNIFORM_EVAL_CFG = REPO_ROOT / "projects" / "vila" / "eval" / "keyframe_qa_tiny_uniform_eval.yaml"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """32 training clips (4 batches of 8) and 15 validation clips (odd: DDP pads)."""
    return generate(str(tmp_path_factory.mktemp("kq") / "keyframe_qa"), seed=1, num_train=32, num_val=15)


def options(data, out, *extra):
    return ["--options", f"datasets.keyframe_qa.data_dir={data}", f"run.output_dir={out}", "run.max_epoch=2",
            "run.batch_size_train=8", "run.batch_size_eval=4", "run.warmup_steps=2", "run.log_freq=2", *extra]


def launch(module, cfg, *args, check=True, torchrun=False, cwd=None):
    """The launcher in this process (``launch_in_process``), or under ``torchrun`` with 2 processes."""
    if torchrun:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",  # a free port
                   "-m", module, "--cfg-path", str(cfg), *args]
        result = subprocess.run(command, capture_output=True, text=True, env=ENV, cwd=cwd or REPO_ROOT)
    else:
        result = launch_in_process(module, ["--cfg-path", cfg, *args], cwd)
    if check and result.returncode != 0:
        pytest.fail(f"{module} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def job_dir(out: Path) -> Path:
    (job,) = [p for p in out.iterdir() if p.is_dir()]
    return job


def trainable_weights(checkpoint: Path) -> dict:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    result = launch("lavis_vila.train", TRAIN_CFG, *options(data_dir, out))
    return job_dir(out), result


def test_train_runs_in_one_process_and_writes_checkpoints_log_results_and_metrics(trained):
    job, result = trained
    assert {"checkpoint_0.pth", "checkpoint_1.pth", "checkpoint_best.pth", "log.txt"} <= {p.name for p in job.iterdir()}
    results = json.loads((job / "result" / "val_epochbest.json").read_text())
    assert len(results) == 15 and len({r["qid"] for r in results}) == 15
    assert all(len(r["frame_idx"]) == 2 for r in results)  # ViLA 8 -> 2
    metrics = json.loads((job / "result" / "val_epochbest_metrics.json").read_text())
    assert {"agg_metrics", "accuracy", "accuracy_Colour", "accuracy_Pattern", "accuracy_Count", "total"} <= set(metrics)
    assert metrics["total"] == 15
    assert "Train: data epoch: [1]" in result.stdout + result.stderr  # periodic progress lines
    assert "global batch 8 = 1 process(es) x 8 per process x 1 accumulation step(s)" in result.stdout + result.stderr


def test_resume_from_the_first_checkpoint_matches_the_uninterrupted_run(trained, data_dir, tmp_path):
    uninterrupted_job, _ = trained
    first_checkpoint = uninterrupted_job / "checkpoint_0.pth"
    resumed = tmp_path / "resumed"
    launch("lavis_vila.train", TRAIN_CFG, *options(data_dir, resumed, f"run.resume_ckpt_path={first_checkpoint}"))
    expected = trainable_weights(uninterrupted_job / "checkpoint_1.pth")
    actual = trainable_weights(job_dir(resumed) / "checkpoint_1.pth")
    assert expected.keys() == actual.keys()
    frozen = [k for k in actual if k.startswith(("visual_encoder.", "t5_model.", "Qformer_T."))]
    assert frozen == ["Qformer_T.bert.embeddings.position_ids"]  # a buffer; frozen parameters are not saved
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=1e-6, msg=key)


def test_vila_lora_resumed_from_its_first_checkpoint_matches_the_uninterrupted_run(data_dir, tmp_path):
    lora = ("model.arch=vila_lora", "run.max_epoch=2")
    launch("lavis_vila.train", TRAIN_CFG, *options(data_dir, tmp_path / "full", *lora))
    full = job_dir(tmp_path / "full")
    launch("lavis_vila.train", TRAIN_CFG,
           *options(data_dir, tmp_path / "resumed", *lora, f"run.resume_ckpt_path={full / 'checkpoint_0.pth'}"))
    expected = trainable_weights(full / "checkpoint_1.pth")
    actual = trainable_weights(job_dir(tmp_path / "resumed") / "checkpoint_1.pth")
    adapters = [k for k in expected if ".lora_B." in k]
    assert adapters and all(expected[k].abs().sum() > 0 for k in adapters)  # trained, saved and resumed
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=1e-6, msg=key)


def test_evaluate_loads_a_trained_checkpoint_through_model_finetuned(trained, data_dir, tmp_path):
    job, _ = trained
    launch("lavis_vila.evaluate", EVAL_CFG, *options(data_dir, tmp_path, f"model.finetuned={job / 'checkpoint_1.pth'}"))
    evaluated = json.loads((job_dir(tmp_path) / "result" / "val_epochbest.json").read_text())
    during_training = json.loads((job / "result" / "val_epoch1.json").read_text())
    assert evaluated == during_training


def test_torchrun_two_process_evaluation_equals_one_process(trained, data_dir, tmp_path):
    job, _ = trained
    finetuned = f"model.finetuned={job / 'checkpoint_1.pth'}"
    launch("lavis_vila.evaluate", EVAL_CFG, *options(data_dir, tmp_path / "one", finetuned))
    launch("lavis_vila.evaluate", EVAL_CFG, *options(data_dir, tmp_path / "two", finetuned), torchrun=True)
    one, two = (job_dir(tmp_path / name) / "result" for name in ("one", "two"))
    one_results = json.loads((one / "val_epochbest.json").read_text())
    two_results = json.loads((two / "val_epochbest.json").read_text())
    assert len(two_results) == len({r["qid"] for r in two_results}) == 15
    assert two_results == one_results
    assert json.loads((two / "val_epochbest_metrics.json").read_text()) == json.loads((one / "val_epochbest_metrics.json").read_text())


def with_corrupted_video(data_dir, tmp_path, split):
    copy = tmp_path / "keyframe_qa"
    shutil.copytree(data_dir, copy)
    record = json.loads((copy / f"{split}.json").read_text())[3]
    shutil.copyfile(CORRUPTED, copy / "videos" / f"{record['video']}.mp4")
    return copy, record


def test_corrupted_training_video_is_skipped_logged_and_counted(tmp_path):
    data, record = with_corrupted_video(generate(str(tmp_path / "src"), seed=2, num_train=16, num_val=4), tmp_path, "train")
    launch("lavis_vila.train", TRAIN_CFG, *options(data, "out", "run.max_epoch=1"), cwd=tmp_path)
    job = job_dir(tmp_path / "out")  # a relative output_dir resolves against the current directory
    log = (job / "log.txt").read_text()
    assert f"{record['video']}.mp4" in log and record["qid"] in log
    final_metrics = max((job / "result").glob("val_epoch*_metrics.json"), key=lambda p: p.stat().st_mtime)
    assert json.loads(final_metrics.read_text())["skipped_train_videos"] == 1


def test_corrupted_evaluation_video_stops_the_run_naming_file_and_qid(trained, tmp_path):
    src = generate(str(tmp_path / "src"), seed=2, num_train=8, num_val=4)
    data, record = with_corrupted_video(src, tmp_path, "val")
    job, _ = trained
    result = launch("lavis_vila.evaluate", EVAL_CFG,
                    *options(data, tmp_path / "out", f"model.finetuned={job / 'checkpoint_1.pth'}"), check=False)
    assert result.returncode != 0
    assert f"{record['video']}.mp4" in result.stderr and f"qid {record['qid']}" in result.stderr


def test_a_bad_validation_video_fails_the_run_but_the_epochs_checkpoint_is_kept(tmp_path):
    data, record = with_corrupted_video(generate(str(tmp_path / "src"), seed=2, num_train=8, num_val=4), tmp_path, "val")
    result = launch("lavis_vila.train", TRAIN_CFG, *options(data, tmp_path / "out", "run.max_epoch=1"), check=False)
    assert result.returncode != 0 and f"qid {record['qid']}" in result.stderr
    assert (job_dir(tmp_path / "out") / "checkpoint_0.pth").is_file()


def test_two_evaluations_started_together_write_two_folders(trained, data_dir, tmp_path):
    job, _ = trained
    command = [sys.executable, "-m", "lavis_vila.evaluate", "--cfg-path", str(EVAL_CFG),
               *options(data_dir, tmp_path, f"model.finetuned={job / 'checkpoint_1.pth'}")]
    processes = [subprocess.Popen(command, env=ENV, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(2)]
    assert [p.wait() for p in processes] == [0, 0]
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(folders) == 2
    assert all((folder / "result" / "val_epochbest_metrics.json").is_file() for folder in folders)


def test_evaluation_records_its_config_and_the_checkpoint_path_and_hash(trained, data_dir, tmp_path):
    job, _ = trained
    checkpoint = job / "checkpoint_1.pth"
    launch("lavis_vila.evaluate", EVAL_CFG, *options(data_dir, tmp_path, f"model.finetuned={checkpoint}"))
    evaluated = job_dir(tmp_path)
    weights = json.loads((evaluated / "result" / "val_epochbest_metrics.json").read_text())["evaluated_weights"]
    assert weights == {"checkpoint": str(checkpoint), "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest()}
    config = json.loads((evaluated / "config.json").read_text())
    assert config["source"].startswith(str(EVAL_CFG)) and config["model"]["finetuned"] == str(checkpoint)


def test_compare_pairs_two_evaluation_folders_vila_and_uniform_and_writes_the_report(trained, data_dir, tmp_path):
    job, _ = trained
    finetuned = f"model.finetuned={job / 'checkpoint_1.pth'}"
    launch("lavis_vila.evaluate", EVAL_CFG, *options(data_dir, tmp_path / "vila", finetuned))
    launch("lavis_vila.evaluate", UNIFORM_EVAL_CFG, *options(data_dir, tmp_path / "uniform", finetuned))
    report = compare.main([str(tmp_path / "vila"), str(tmp_path / "uniform"), "--out", str(tmp_path / "report.md")])
    assert (tmp_path / "report.md").read_text() == report
    vila_file = job_dir(tmp_path / "vila") / "result" / "val_epochbest.json"
    assert f"- A: `{vila_file}`" in report and "- 15 questions matched by qid" in report
    accuracy = json.loads(vila_file.with_name("val_epochbest_metrics.json").read_text())["accuracy"]
    assert f"| all | 15 | {accuracy:.1f} | " in report
    assert {f"| {qtype} | " in report for qtype in ("Colour", "Pattern", "Count")} == {True}


def test_explain_builds_the_model_a_training_checkpoint_records(trained, tmp_path, capsys):
    job, _ = trained
    (result,) = explain.main(["--video", str(PANCAKE), "--question", "what is flipped?", "--options", "a pancake",
                               "a coin", "--out", str(tmp_path / "strip.png"), "--checkpoint", str(job / "checkpoint_best.pth")])
    assert len(result.frame_idx) == 2 and [len(s) for s in result.probabilities] == [4, 4]  # the config's 8 -> 2, not 16 -> 4
    assert "chosen frames (of 8 candidates)" in capsys.readouterr().out


def test_selection_trace_replays_each_epochs_checkpoint_as_the_runs_own_validation_did(trained, data_dir, capsys):
    job, _ = trained
    rows = selection_trace.main(["--run-dir", str(job), "--data-dir", data_dir])
    assert [row["checkpoint"] for row in rows] == ["checkpoint_0.pth", "checkpoint_1.pth"]
    for epoch, row in enumerate(rows):
        validated = json.loads((job / "result" / f"val_epoch{epoch}.json").read_text())
        seen = event_frame_seen(validated, data_dir, candidate_frames=8)
        assert row["event_frame_seen"] == pytest.approx(100 * sum(seen.values()) / len(seen))
        metrics = json.loads((job / "result" / f"val_epoch{epoch}_metrics.json").read_text())
        assert row["accuracy"] == pytest.approx(metrics["accuracy"])
    records = json.loads((Path(data_dir) / "val.json").read_text())
    assert rows[0]["straddling"] == sum(r["key_frames"][0] < 4 <= r["key_frames"][-1] for r in records)
    assert "| checkpoint_1.pth | " in capsys.readouterr().out


def test_a_truncated_resume_checkpoint_is_an_error_naming_the_path_and_the_key(trained, data_dir, tmp_path):
    job, _ = trained
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes((job / "checkpoint_0.pth").read_bytes()[:4096])
    result = launch("lavis_vila.train", TRAIN_CFG,
                    *options(data_dir, tmp_path / "out", f"run.resume_ckpt_path={truncated}"), check=False)
    assert result.returncode != 0
    assert f"run.resume_ckpt_path: '{truncated}' is not a readable PyTorch checkpoint" in result.stderr
