"""The prepared GPU check: its CPU dry run passes, and its wheels fit what the device tool carries."""
import json
import os
import subprocess
import zipfile

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def test_gpu_check_dry_run_trains_evaluates_and_benches_and_writes_json_and_markdown(tmp_path):
    """The script as the GPU machine runs it, shortened: 6 steps, 8 questions, and one quick file of
    tests in step 0 (the suite runs the GPU check's own three files anyway)."""
    out = tmp_path / "gpu_check"
    result = subprocess.run(["bash", "run_scripts/vila/gpu_check.sh", "--dry-run", str(out), "--steps", "6",
                             "--eval-samples", "8", "--stack-tests", "tests/test_import_graph.py"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    tests = next(r for r in report["steps_run"] if r["step"] == "tests")
    assert tests["status"] == "ok" and tests["passed"] > 0 and "failed" not in tests
    assert tests["files"] == ["tests/test_import_graph.py"]
    train = {r["runner"]: r for r in report["steps_run"] if r["step"] == "train"}
    assert train["runner_base"]["status"] == "skipped" and "CUDA" in train["runner_base"]["reason"]
    vila_runner = train["vila_runner"]
    assert vila_runner["status"] == "ok" and vila_runner["logged_losses"] == 6 and vila_runner["all_losses_finite"]
    assert vila_runner["val_questions"] == 8
    benches = {r["batch_size"]: r for r in report["steps_run"] if r["step"] == "bench"}
    assert set(benches) == {1, 8}
    for batch_size, bench in benches.items():
        rows = bench["rows"]
        assert {(r["model"], r["mode"]) for r in rows} >= {("vila", "efficient"), ("vila_uniform", "efficient"),
                                                          ("sevila_baseline", "efficient"), ("vila", "official_style"),
                                                          ("component:vit", "efficient"), ("component:llm", "efficient")}
        assert all(r["dtype"] == "bf16" and r["batch_size"] == batch_size and r["latency_ms_median"] > 0 for r in rows)
        assert all(r["library_ms_per_video"] > 0 for r in rows)  # where the time goes, for the GPU run to show
    compiled = {batch_size: {(r["model"], r["mode"], r["candidate_frames"], r["compile"])
                             for r in bench["rows"] if r["compile"] != "eager"} for batch_size, bench in benches.items()}
    # ViLA 8->4 eager, compiled and with CUDA graphs at batch 1, SeViLA 32->4 beside it; nothing compiled at batch 8
    assert compiled == {1: {("vila", "efficient", 8, "default"), ("vila", "efficient", 8, "reduce-overhead")}, 8: set()}
    markdown = (out / "gpu_check.md").read_text()
    assert "| vila_runner | ok |" in markdown and "bench, bf16, batch 8: ok" in markdown


@pytest.mark.parametrize("stack", ["current", "pinned"])
def test_gpu_wheels_fit_in_60_mib_and_are_tagged_for_python_3_12(tmp_path, stack):
    """The current stack carries no transformers, hub or timm (the GPU machine's own run LAVIS through
    lavis_compat, with no version record); the pinned stack carries transformers 4.26 with them."""
    out = tmp_path / "whl"
    result = subprocess.run(["bash", "run_scripts/vila/gpu_wheels.sh", str(out)], cwd=REPO_ROOT,
                            env={**os.environ, "STACK": stack}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    wheels = sorted(out.glob("*.whl"))
    assert sum(w.stat().st_size for w in wheels) < 60 * 2**20
    names = {w.name.split("-")[0].lower() for w in wheels}
    assert {"salesforce_lavis", "decord", "fairscale", "omegaconf"} <= names
    pinned_only = {"transformers", "huggingface_hub", "timm"}
    assert (pinned_only <= names) if stack == "pinned" else not (pinned_only & names)
    for wheel in wheels:
        python_tag, abi_tag = wheel.name[:-4].split("-")[-3:-1]
        pure = "py3" in python_tag.split(".") and abi_tag == "none"
        assert pure or python_tag in ("cp312", "cp310") and abi_tag in ("cp312", "abi3"), wheel.name
        zipfile.ZipFile(wheel).testzip()
