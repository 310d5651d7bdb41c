"""What ``python -m lavis_vila.train|evaluate`` set up before the runner starts (``lavis_vila.launch``)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, launch_in_process
from lavis_vila.datasets.synthetic import generate

pytestmark = pytest.mark.slow
TRAIN_CFG = REPO_ROOT / "projects" / "vila" / "train" / "keyframe_qa_tiny_vila.yaml"
EVAL_CFG = REPO_ROOT / "projects" / "vila" / "eval" / "keyframe_qa_tiny_vila_eval.yaml"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


def job_dir(out: Path) -> Path:
    (job,) = [p for p in out.iterdir() if p.is_dir()]
    return job


def test_evaluating_with_a_training_config_neither_reads_the_train_split_nor_sizes_a_training_batch(tmp_path):
    data = Path(generate(str(tmp_path / "keyframe_qa"), seed=6, num_train=8, num_val=4))
    (data / "train.json").unlink()  # an evaluation has no use for it
    result = launch_in_process("lavis_vila.evaluate", [
        "--cfg-path", TRAIN_CFG, "--options", f"datasets.keyframe_qa.data_dir={data}",
        f"run.output_dir={tmp_path / 'out'}", "run.global_batch_size=64"])
    assert result.returncode == 0, result.stderr[-4000:]
    assert "global batch" not in result.stderr  # the training arithmetic of apply_global_batch
    metrics = json.loads((job_dir(tmp_path / "out") / "result" / "val_epochbest_metrics.json").read_text())
    assert metrics["total"] == 4


def test_under_torchrun_rank_0_shows_its_info_lines_once_with_its_place_in_the_process_group(tmp_path):
    data = generate(str(tmp_path / "keyframe_qa"), seed=8, num_train=0, num_val=4)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "lavis_vila.evaluate", "--cfg-path", str(EVAL_CFG), "--options",
               f"datasets.keyframe_qa.data_dir={data}", f"run.output_dir={tmp_path / 'out'}", "model.load_finetuned=False"]
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, cwd=REPO_ROOT, timeout=600)
    console = result.stdout + result.stderr
    assert result.returncode == 0, console[-4000:]
    assert console.count("[INFO] process group: rank 0 of 2, backend gloo") == 1, console[-4000:]
    assert console.count("[INFO] val epoch best: accuracy") == 1  # rank 0's; rank 1 logs warnings only (LAVIS)
    assert "rank 1 of 2" not in console
