"""The prepared GPU check: ViLA 32->4 at full size, as researchers run it, in one short command
(``bash run_scripts/vila/gpu_check.sh OUT``; ``python -m lavis_vila.tools.gpu_check``).

Steps, each recorded in ``OUT/gpu_check.json`` and ``OUT/gpu_check.md`` as soon as it ends:
  0. the tests of LAVIS on the machine's own transformers, HF-format weights and saved models;
  a. train ViLA 32->4 for ``steps`` steps at batch ``batch_size`` with ``run.amp: True``
     (fp16 autocast, GradScaler; fp16 ViT, bf16 T5) under ``torchrun --nproc_per_node=1``, once
     with LAVIS's ``runner_base`` and once with ``vila_runner``: every logged loss must be
     finite; the peak GPU memory is recorded;
  b. evaluate ``eval_samples`` validation questions (each training run evaluates its val split);
  c. ``tools.bench`` in bf16 at batch 1 and 8 (every variant and the component rows); at batch 1
     ViLA 8->4 compiled beside them too: ``torch.compile`` (inductor) and CUDA graphs
     (``reduce-overhead``), each with its kernels, graphs and host syncs a video; every row with
     its ms a video in the tokenizers, the compiled ones launching their graphs and entering them
     (dynamo's guards, the parameters as graph inputs: host time per call), and every row but the
     CUDA-graph one in library calls and in any kernel (``--library-time``).

Full size is the ``flant5xl`` architecture with random weights (the machine is offline) and
prompts tokenized by the shipped tiny tokenizers. The data is a generated ``keyframe_qa``.
``dry_run`` runs the tiny model on the CPU; ``runner_base`` needs CUDA, so there it is
reported as skipped.
"""
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass

import torch
from omegaconf import OmegaConf

from lavis_vila.datasets.synthetic import generate
from lavis_vila.experiments.gpu_check_report import CANDIDATE_FRAMES, SELECTED_FRAMES, STACK_TESTS, write_report
from lavis_vila.experiments.machine import describe as describe_machine

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE_CONFIG = os.path.join(REPO_ROOT, "projects", "vila", "train", "keyframe_qa_tiny_vila.yaml")
# The flant5xl architecture with random weights and the shipped tokenizers: nothing to download.
FULL_SIZE_RANDOM = dict(model_type="flant5xl", vit_weights=None, qformer_tokenizer="tiny", t5_model="flan_t5_xl",
                        t5_tokenizer="tiny", pretrained=None)
COMPILE_MODES = ("default", "reduce-overhead")  # the bench's compiled rows: inductor, and inductor with CUDA graphs
# ViLA 8->4 compiled (beside every eager row, SeViLA 32->4 among them) at batch 1 only: compiling
# the full-size graphs takes minutes a row, and the check must fit its step timeout and the GPU budget.
COMPILED_ROWS_CHECKED = {1: ("vila_8",), 8: ()}
STEP_LOSS = re.compile(r"Train: data epoch: \[\d+\]\s+\[\s*\d+/\d+\].*?\bloss: (\S+)")  # LAVIS's progress lines


@dataclass
class Settings:
    dry_run: bool = False  # the tiny model on the CPU
    steps: int = 20
    batch_size: int = 2
    eval_samples: int = 32
    timeout: float = 300  # seconds allowed for each step
    stack_tests: tuple = STACK_TESTS  # the test files of step 0


def write_config(path: str, data_dir: str, settings: Settings) -> str:
    """The tiny keyframe_qa ViLA project config, resized to 32->4, full size unless a dry run."""
    cfg = OmegaConf.load(BASE_CONFIG)
    model = dict(model_type="tiny") if settings.dry_run else FULL_SIZE_RANDOM
    cfg.model = OmegaConf.merge(cfg.model, model, dict(
        num_candidate_frames=CANDIDATE_FRAMES, num_selected_frames=SELECTED_FRAMES,
        vit_precision="fp16", llm_precision="bf16", load_finetuned=False, finetuned=None))
    image_size = 32 if settings.dry_run else 224
    dataset = cfg.datasets.keyframe_qa
    dataset.data_dir = data_dir
    for split in ("train", "eval"):
        dataset.vis_processor[split].num_frames = CANDIDATE_FRAMES
        dataset.vis_processor[split].image_size = image_size
    cfg.run = OmegaConf.merge(cfg.run, dict(
        amp=True, device="cpu" if settings.dry_run else "cuda", distributed=True, max_epoch=1,
        batch_size_train=settings.batch_size, batch_size_eval=8, init_lr=1e-5, warmup_steps=5, log_freq=1,
        num_workers=0 if settings.dry_run else 4))
    OmegaConf.save(cfg, path)
    return path


def run_logged(command: list, log_path: str, timeout: float) -> dict:
    """Run ``command``, its output into ``log_path``; returns exit code, seconds and output."""
    start = time.time()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)
        code, output = result.returncode, result.stdout + result.stderr
    except subprocess.TimeoutExpired as error:
        code = "timeout"
        output = "".join(part.decode() if isinstance(part, bytes) else part or "" for part in (error.stdout, error.stderr))
    with open(log_path, "w") as f:
        f.write(output)
    return {"exit_code": code, "seconds": round(time.time() - start, 1), "output": output}


def read_log_stats(output_dir: str) -> dict:
    """The JSON lines of ``log.txt`` (train and val stats) of the one job under ``output_dir``."""
    stats = {}
    for job in os.listdir(output_dir) if os.path.isdir(output_dir) else []:
        with open(os.path.join(output_dir, job, "log.txt")) as f:
            for line in f:
                if line.startswith('{"'):
                    stats.update(json.loads(line))
    return stats


def train(runner: str, cfg_path: str, out: str, settings: Settings) -> dict:
    record = {"step": "train", "runner": runner}
    if runner == "runner_base" and not torch.cuda.is_available():
        return {**record, "status": "skipped", "reason": "LAVIS's runner_base needs CUDA (PrefetchLoader)"}
    output_dir = os.path.join(out, f"train_{runner}")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
               "-m", "lavis_vila.train", "--cfg-path", cfg_path,
               "--options", f"run.runner={runner}", f"run.output_dir={output_dir}"]
    result = run_logged(command, os.path.join(out, f"train_{runner}.log"), settings.timeout)
    losses = [float(v) for v in STEP_LOSS.findall(result["output"])]
    stats = read_log_stats(output_dir)
    ok = result["exit_code"] == 0 and len(losses) >= settings.steps and all(math.isfinite(v) for v in losses)
    return {
        **record, "status": "ok" if ok else "failed", "exit_code": result["exit_code"], "seconds": result["seconds"],
        "logged_losses": len(losses), "all_losses_finite": all(math.isfinite(v) for v in losses),
        "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
        "peak_gpu_mem_mb": stats.get("train_peak_gpu_mem_mb"),
        "val_questions": stats.get("val_total"), "val_accuracy": stats.get("val_accuracy"),
        **({} if ok else {"output_tail": result["output"][-3000:]}),
    }


def bench(batch_size: int, out: str, settings: Settings) -> dict:
    json_path = os.path.join(out, f"bench_batch{batch_size}.json")
    command = [sys.executable, "-m", "lavis_vila.tools.bench", "--model-type", "tiny" if settings.dry_run else "flant5xl",
               "--device", "cpu" if settings.dry_run else "cuda", "--dtype", "bf16", "--batch-size", str(batch_size),
               "--repeats", "3", "--warmup", "1", "--library-time", "--out", json_path]
    if COMPILED_ROWS_CHECKED[batch_size]:
        command += ["--compile", *COMPILE_MODES, "--compile-rows", *COMPILED_ROWS_CHECKED[batch_size]]
    result = run_logged(command, os.path.join(out, f"bench_batch{batch_size}.log"), settings.timeout)
    ok = result["exit_code"] == 0 and os.path.isfile(json_path)
    record = {"step": "bench", "batch_size": batch_size, "status": "ok" if ok else "failed",
              "exit_code": result["exit_code"], "seconds": result["seconds"]}
    if not ok:
        return {**record, "output_tail": result["output"][-3000:]}
    with open(json_path) as f:
        return {**record, "rows": json.load(f)}


def stack_tests(out: str, settings: Settings) -> dict:
    """The tests of LAVIS on this machine's own transformers (lavis_compat), HF-format weights and
    saved-model folders: quick, and what every later step relies on."""
    command = [sys.executable, "-m", "pytest", *settings.stack_tests, "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    result = run_logged(command, os.path.join(out, "stack_tests.log"), settings.timeout)
    counts = dict((kind, int(n)) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|errors?)", result["output"]))
    ok = result["exit_code"] == 0 and counts.get("passed", 0) > 0
    return {"step": "tests", "files": list(settings.stack_tests), "status": "ok" if ok else "failed",
            "exit_code": result["exit_code"],
            "seconds": result["seconds"], **counts, **({} if ok else {"output_tail": result["output"][-3000:]})}


def run(out: str, settings: Settings) -> dict:
    """Every step in turn, the report written to ``out`` after each one; the report."""
    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    data_dir = generate(os.path.join(out, "keyframe_qa"), seed=0, num_train=settings.steps * settings.batch_size,
                        num_val=settings.eval_samples, frames=CANDIDATE_FRAMES)
    cfg_path = write_config(os.path.join(out, "vila_32to4.yaml"), data_dir, settings)
    report = {"dry_run": settings.dry_run, "steps": settings.steps, "batch_size": settings.batch_size,
              "machine": describe_machine(), "steps_run": []}
    for step in (lambda: stack_tests(out, settings), lambda: train("runner_base", cfg_path, out, settings),
                 lambda: train("vila_runner", cfg_path, out, settings), lambda: bench(1, out, settings),
                 lambda: bench(8, out, settings)):
        report["steps_run"].append(step())
        print(json.dumps({k: v for k, v in report["steps_run"][-1].items() if k not in ("rows", "output_tail")}),
              flush=True)
        write_report(report, out)  # after every step: a check stopped at its time limit keeps what it measured
    return report
