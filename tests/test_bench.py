import json
import os
import subprocess

import pytest

from conftest import PANCAKE, REPO_ROOT
from lavis_vila.tools import bench

ROW_KEYS = {"model", "mode", "candidate_frames", "selected_frames", "batch_size", "device", "dtype", "flops",
            "latency_ms_median", "latency_ms_min", "latency_ms_max", "peak_mem_mb"}
VARIANTS = {("vila", "efficient", 8, 4), ("vila", "efficient", 32, 4), ("vila_uniform", "efficient", 4, 4),
            ("vila_uniform", "efficient", 32, 32), ("sevila_baseline", "efficient", 32, 4),
            ("vila", "official_style", 8, 4), ("component:vit", "efficient", 8, 8), ("component:llm", "efficient", 4, 4)}


@pytest.mark.slow
def test_bench_gpu_script_runs_tiny_on_cpu_and_writes_documented_json(tmp_path):
    env = {**os.environ, "MODEL_TYPE": "tiny", "OUT": str(tmp_path), "REPEATS": "3"}
    result = subprocess.run(["bash", "run_scripts/vila/bench_gpu.sh"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = json.loads((tmp_path / "latency_tiny_cpu.json").read_text())
    assert {(r["model"], r["mode"], r["candidate_frames"], r["selected_frames"]) for r in rows} == VARIANTS
    for row in rows:
        assert ROW_KEYS <= set(row) and row["weights"] == "random"
        assert row["latency_ms_min"] <= row["latency_ms_median"] <= row["latency_ms_max"]
    flops = {r["model"] + r["mode"] + str(r["candidate_frames"]): r["flops"]
             for r in json.loads((tmp_path / "flops_tiny.json").read_text())}
    assert flops["sevila_baselineefficient32"] > flops["vilaefficient32"] > flops["vilaefficient8"] > 0
    assert "RANDOM weights" in (tmp_path / "bench_tiny.md").read_text()


def test_flops_on_meta_device_rank_sevila_above_vila(capsys):
    rows = bench.main(["--model-type", "tiny", "--flops"])
    by = {(r.model, r.mode, r.candidate_frames): r.flops for r in rows}
    assert by[("sevila_baseline", "efficient", 32)] > by[("vila", "efficient", 32)] > by[("vila", "efficient", 8)]
    assert by[("vila", "official_style", 8)] is None  # generate is data-dependent
    assert "fewer FLOPs" in capsys.readouterr().out


def test_data_path_measures_processor_and_raw_decord_frames_per_second():
    result = bench.data_path_fps(str(PANCAKE), repeats=3, num_frames=8, image_size=64)
    assert result["vila_video_eval"] > 0 and result["decord_get_batch"] > 0
    assert result["ratio"] == pytest.approx(result["vila_video_eval"] / result["decord_get_batch"])
