"""Your own data: ``prepare custom`` output evaluates with the ``custom`` builder (docs/own_data.md)."""
import json
import shutil

import pytest

from conftest import PANCAKE, REPO_ROOT, launch_in_process
from lavis_vila.tools import prepare

SMOKE = ["model.model_type=tiny", "model.load_finetuned=False", "model.finetuned=null", "run.device=cpu",
         "run.num_workers=0", "run.batch_size_eval=2"]


@pytest.mark.slow
def test_custom_questions_converted_by_prepare_evaluate_tiny_per_type(tmp_path):
    root = tmp_path / "data" / "custom"
    (root / "videos" / "kitchen").mkdir(parents=True)
    shutil.copyfile(PANCAKE, root / "videos" / "kitchen" / "pancake.mkv")  # named as the questions name it
    shutil.copyfile(PANCAKE, root / "videos" / "kitchen" / "pancake.mp4")  # "kitchen/pancake": video_ext .mp4
    prepare.main(["custom", "--input", str(REPO_ROOT / "tests" / "fixtures" / "prepare" / "my_questions.jsonl"),
                  "--out", str(root / "val.json")])
    result = launch_in_process("lavis_vila.evaluate", [
        "--cfg-path", REPO_ROOT / "projects" / "vila" / "eval" / "custom_vila_32to4_eval.yaml", "--options", *SMOKE,
        f"datasets.custom.data_root={root}", f"run.output_dir={tmp_path / 'out'}"])
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = (tmp_path / "out").iterdir()
    metrics = json.loads((job / "result" / "val_epochbest_metrics.json").read_text())
    assert (metrics["total"], metrics["labelled"]) == (3, 3)
    assert {"accuracy_Object", "accuracy_Event", "accuracy_CUSTOM"} <= set(metrics)
    rows = json.loads((job / "result" / "val_epochbest.json").read_text())
    assert sorted(r["release_id"] for r in rows) == ["2", "q1", "q2"]
