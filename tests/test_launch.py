"""What ``python -m lavis_vila.train|evaluate`` set up before the runner starts (``lavis_vila.launch``)."""
import json
from pathlib import Path

import pytest

from conftest import REPO_ROOT, launch_in_process
from lavis_vila.datasets.synthetic import generate

pytestmark = pytest.mark.slow
TRAIN_CFG = REPO_ROOT / "projects" / "vila" / "train" / "keyframe_qa_tiny_vila.yaml"


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
