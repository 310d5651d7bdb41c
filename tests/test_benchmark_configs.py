"""Benchmark eval configs on prepared data: only the evaluated split is needed, and
``--options model.model_type=tiny`` smoke-tests a full-size config offline on the CPU."""
import json
import shutil
import subprocess
import sys

import pytest

from conftest import PANCAKE, REPO_ROOT
from lavis_vila.tools import prepare

pytestmark = pytest.mark.slow
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "prepare"
NEXTQA_EVAL = REPO_ROOT / "projects" / "vila" / "eval" / "nextqa_vila_32to4_eval.yaml"
SMOKE = ["model.model_type=tiny", "model.load_finetuned=False", "model.finetuned=null", "run.device=cpu",
         "run.num_workers=0", "run.batch_size_eval=2"]


@pytest.fixture
def nextqa_val_only(tmp_path):
    """data/nextqa with val.json (from the official CSV) and videos in the release's folder layout."""
    root = tmp_path / "data" / "nextqa"
    root.mkdir(parents=True)
    prepare.main(["nextqa", "--input", str(FIXTURES / "nextqa_val.csv"), "--video-map",
                  str(FIXTURES / "map_vid_vidorID.json"), "--out", str(root / "val.json")])
    for record in json.loads((root / "val.json").read_text()):
        video = root / "videos" / f"{record['video']}.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PANCAKE, video)  # decord reads the container, whatever the extension
    return root


def evaluate(data_root, out, *options):
    return subprocess.run(
        [sys.executable, "-m", "lavis_vila.evaluate", "--cfg-path", str(NEXTQA_EVAL), "--options", *SMOKE,
         f"datasets.nextqa.data_root={data_root}", f"run.output_dir={out}", *options],
        capture_output=True, text=True, cwd=REPO_ROOT, env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                                              "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})


def test_nextqa_eval_config_runs_tiny_offline_on_val_json_alone(nextqa_val_only, tmp_path):
    result = evaluate(nextqa_val_only, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = (tmp_path / "out").iterdir()
    metrics = json.loads((job / "result" / "val_epochbest_metrics.json").read_text())
    assert metrics["total"] == 2 and {"accuracy", "accuracy_Temporal", "accuracy_Causal"} <= set(metrics)
    config = json.loads((job / "config.json").read_text())
    assert config["model"]["model_type"] == "tiny" and config["model"]["t5_model"] == "tiny"  # tiny defaults loaded
    assert config["datasets"]["nextqa"]["vis_processor"]["eval"]["num_frames"] == 32  # the config's 32 frames
    assert config["datasets"]["nextqa"]["vis_processor"]["eval"]["image_size"] == 32  # the tiny model's size


def test_a_missing_evaluation_split_names_the_file_and_the_key(nextqa_val_only, tmp_path):
    (nextqa_val_only / "val.json").unlink()
    result = evaluate(nextqa_val_only, tmp_path / "out")
    assert result.returncode != 0
    assert f"annotation file not found: {nextqa_val_only / 'val.json'}" in result.stderr
    assert "datasets.nextqa.build_info.annotations.val.storage" in result.stderr
