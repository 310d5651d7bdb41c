"""Task ``videoqa_mc``: multiple-choice video QA with ViLA's Gumbel temperature schedule.

It works under LAVIS's stock ``runner_base`` (GPUs, torchrun) and under ``vila_runner``.

Run keys:
    temperature_start (1.0), temperature_end (0.01), temperature_epochs (50):
        tau = start * (end / start) ** (iteration / (temperature_epochs * iters_per_epoch)),
        the official code's schedule (with 10 epochs it ends near 0.40, not 0.01).
    seed (42): each training epoch reseeds from (seed, epoch, rank), so a resumed run
        replays exactly the epochs an uninterrupted one would have.
    global_batch_size (none): the recipe's effective batch; ``batch_size_train`` (the most one
        process holds) and ``accum_grad_iters`` are set from it for the run's GPU count
        (``global_batch.py``). Every training run logs its global batch at start.

The training loop is LAVIS's (scheduler step, ``train_step``, ``GradScaler`` when the runner
passes one for ``run.amp``, gradient accumulation, progress lines), made device-aware: fp16
autocast on the model's device, and the epoch averages reduced there. LAVIS's own loop autocasts
and reduces on CUDA only, which stops an amp or ``torchrun`` run on a CPU.
"""
import hashlib
import json
import logging
import os
import random

import numpy as np
import torch
import torch.distributed as dist
from lavis.common.dist_utils import get_rank, get_world_size, is_dist_avail_and_initialized, is_main_process
from lavis.common.logger import MetricLogger, SmoothedValue
from lavis.common.registry import registry
from lavis.tasks.base_task import BaseTask
from omegaconf import OmegaConf

from lavis_vila.atomic_files import write_json
from lavis_vila.config_check import check_config, config_source
from lavis_vila.datasets.mc_video_qa import NO_ANSWER
from lavis_vila.models.compiled import reporting_compilation
from lavis_vila.registry import register_task
from lavis_vila.tasks.global_batch import apply_global_batch
from lavis_vila.tasks.metrics import accuracy_metrics
from lavis_vila.tasks.shared_folder import check_shared_folder


def gumbel_temperature(iteration: int, iters_per_epoch: int, start: float = 1.0, end: float = 0.01,
                       epochs: float = 50) -> float:
    return start * (end / start) ** (iteration / (epochs * iters_per_epoch))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def move_to(samples: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in samples.items()}


def mean_over_ranks(count: int, total: float, device) -> float:
    """``total / count`` summed over every rank, reduced on ``device`` (gloo on CPU, nccl on GPU)."""
    if is_dist_avail_and_initialized():
        both = torch.tensor([count, total], dtype=torch.float64, device=device)
        dist.all_reduce(both)
        count, total = both.tolist()
    return total / count


def gather_objects(local: list) -> list:
    """Concatenate a list from every rank (a no-op without a process group)."""
    if not is_dist_avail_and_initialized():
        return local
    gathered = [None] * get_world_size()
    dist.all_gather_object(gathered, local)
    return [item for part in gathered for item in part]


@register_task("videoqa_mc")
class VideoQAMultipleChoiceTask(BaseTask):
    def __init__(self, temperature_start=1.0, temperature_end=0.01, temperature_epochs=50, seed=42, log_freq=50):
        super().__init__()
        self.temperature_start = temperature_start
        self.temperature_end = temperature_end
        self.temperature_epochs = temperature_epochs
        self.seed = seed
        self.log_freq = log_freq
        self.skipped_train_videos = []  # this rank's messages
        self.num_skipped_train_videos = 0  # all ranks, all epochs of this process
        self.cfg = None  # the LAVIS Config, recorded next to every evaluation
        self.checked_result_dir = None  # the result folder every rank was shown to see

    @classmethod
    def setup_task(cls, cfg=None, **kwargs):
        """Also checks the whole config (LAVIS's ``train.py`` and ours both call this first)."""
        if cfg is not None:
            check_config(cfg, config_source(cfg))
        run = cfg.run_cfg if cfg is not None else {}
        if cfg is not None and not run.get("evaluate", False):
            apply_global_batch(run, get_world_size())
        task = cls(
            temperature_start=float(run.get("temperature_start", 1.0)),
            temperature_end=float(run.get("temperature_end", 0.01)),
            temperature_epochs=float(run.get("temperature_epochs", 50)),
            seed=int(run.get("seed", 42)),
            log_freq=int(run.get("log_freq", 50)),
        )
        task.cfg = cfg
        return task

    def build_datasets(self, cfg):
        """Only the splits the run uses: ``test_splits`` to evaluate, else train, valid and test."""
        run = cfg.run_cfg
        names = ("test_splits",) if run.get("evaluate", False) else ("train_splits", "valid_splits", "test_splits")
        splits = {split for key in names for split in (run.get(key) or [])}
        labelled = () if run.get("evaluate", False) else tuple(run.get("valid_splits") or [])  # they pick the best epoch
        datasets = {}
        for name, dataset_cfg in cfg.datasets_cfg.items():
            builder = registry.get_builder_class(name)(dataset_cfg)
            builder.splits = splits
            builder.labelled_splits = labelled
            datasets[name] = builder.build_datasets()
        return datasets

    # ------------------------------------------------------------------ training

    def temperature(self, samples) -> float:
        iters_per_epoch = samples["num_iters_per_epoch"]
        iteration = samples["epoch"] * iters_per_epoch + samples["iters"]
        return gumbel_temperature(iteration, iters_per_epoch, self.temperature_start,
                                  self.temperature_end, self.temperature_epochs)

    def train_step(self, model, samples):
        self.skipped_train_videos.extend(samples.pop("skipped", []))
        if len(samples["qid"]) == 0:  # every video of the batch was unreadable
            return sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
        return model(samples, temperature=self.temperature(samples))["loss"]  # every model takes it

    def _train_inner_loop(self, epoch, iters_per_epoch, model, data_loader, optimizer, lr_scheduler, scaler=None,
                          start_iters=None, log_freq=50, cuda_enabled=False, accum_grad_iters=1):
        device = next(model.parameters()).device
        use_amp = scaler is not None
        data_loader = data_loader if hasattr(data_loader, "__next__") else iter(data_loader)
        inner_epoch = epoch if start_iters is None else start_iters // iters_per_epoch
        metric_logger = MetricLogger(delimiter="  ")
        metric_logger.add_meter("lr", SmoothedValue(window_size=1, fmt="{value:.6f}"))
        metric_logger.add_meter("loss", SmoothedValue(window_size=1, fmt="{value:.4f}"))
        logging.info("Start training epoch %d, %d iters per inner epoch.", epoch, iters_per_epoch)
        for i in metric_logger.log_every(range(iters_per_epoch), log_freq, f"Train: data epoch: [{epoch}]"):
            samples = move_to(next(data_loader), device)
            samples.update({"epoch": inner_epoch, "num_iters_per_epoch": iters_per_epoch, "iters": i})
            lr_scheduler.step(cur_epoch=inner_epoch, cur_step=i)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                loss = self.train_step(model=model, samples=samples)
            (scaler.scale(loss) if use_amp else loss).backward()
            if (i + 1) % accum_grad_iters == 0:
                if use_amp:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                optimizer.zero_grad()
            metric_logger.update(loss=loss.item(), lr=optimizer.param_groups[0]["lr"])
        averages = {name: mean_over_ranks(meter.count, meter.total, device)
                    for name, meter in metric_logger.meters.items()}
        logging.info("Averaged stats: %s", "  ".join(f"{k}: {v:.4f}" for k, v in averages.items()))
        return {name: f"{value:.3f}" for name, value in averages.items()}

    def train_epoch(self, epoch, model, data_loader, optimizer, lr_scheduler, scaler=None,
                    cuda_enabled=False, log_freq=50, accum_grad_iters=1):
        seed_everything(self.seed + 1000 * epoch + get_rank())
        skipped_before = len(self.skipped_train_videos)
        stats = super().train_epoch(epoch, model, data_loader, optimizer, lr_scheduler, scaler,
                                    cuda_enabled, log_freq, accum_grad_iters)
        skipped = gather_objects(self.skipped_train_videos[skipped_before:])
        for message in skipped:
            logging.warning("skipped unreadable training video: %s", message)
        self.num_skipped_train_videos += len(skipped)
        stats["skipped_videos"] = len(skipped)
        if skipped:
            stats["skipped_files"] = skipped
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            stats["peak_gpu_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
        return stats

    # ------------------------------------------------------------------ evaluation

    def valid_step(self, model, samples):
        output = model.predict_answers(samples)
        answers = samples["answer"].tolist() if torch.is_tensor(samples["answer"]) else list(samples["answer"])
        return [
            {"qid": qid, "release_id": release_id, "prediction": int(pred),
             "answer": None if int(answer) == NO_ANSWER else int(answer),
             "question_type": qtype, "frame_idx": [int(i) for i in frames]}
            for qid, release_id, pred, answer, qtype, frames in zip(
                samples["qid"], samples["release_id"], output["prediction"], answers, samples["question_type"],
                output["frame_idx"]
            )
        ]

    def evaluation(self, model, data_loader, cuda_enabled=None):
        """Predict every batch on the model's own device (CPU or GPU), with a progress line."""
        device = next(model.parameters()).device
        metric_logger = MetricLogger(delimiter="  ")
        results = []
        with reporting_compilation(model, "evaluation"):
            for samples in metric_logger.log_every(data_loader, self.log_freq, "Evaluation"):
                skipped = samples.pop("skipped", [])  # only with on_bad_video_eval: skip
                results.extend({"qid": message, "skipped": True} for message in skipped)
                if len(samples["qid"]):
                    results.extend(self.valid_step(model, move_to(samples, device)))
        return results

    def evaluated_weights(self, epoch, output_dir: str) -> dict:
        """The checkpoint an evaluation used, and its sha256: the run's own for a training epoch or
        the best one, else the model config's ``finetuned`` / ``pretrained``."""
        path = os.path.join(output_dir, f"checkpoint_{epoch}.pth")
        if not os.path.isfile(path):
            model = self.cfg.model_cfg if self.cfg is not None else {}
            path = model.get("finetuned") if model.get("load_finetuned") else model.get("pretrained")
        if not path or not os.path.isfile(path):
            return {"checkpoint": path, "sha256": None}
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                digest.update(block)
        return {"checkpoint": os.path.abspath(path), "sha256": digest.hexdigest()}

    def check_result_folder_shared(self) -> None:
        """At the run's first evaluation, on every rank: every rank sees the run's result folder (one
        folder across nodes), else ``FolderNotSharedError`` on every rank. Later evaluations of the
        same folder skip it (a collective and a file per rank each time)."""
        result_dir = registry.get_path("result_dir")
        if result_dir != self.checked_result_dir:
            check_shared_folder(result_dir, "the run's result folder")
            self.checked_result_dir = result_dir

    def after_evaluation(self, val_result, split_name, epoch, **kwargs):
        """De-duplicate by qid across ranks; write results and metrics JSON on the main process, after
        every rank has shown that it sees the run's result folder (``check_result_folder_shared``)."""
        self.check_result_folder_shared()
        records = gather_objects(val_result)
        if not is_main_process():
            return None
        by_qid = {}
        for record in records:  # DistributedSampler pads the last batch with repeats
            by_qid.setdefault(record["qid"], record)
        skipped = sorted(q for q, r in by_qid.items() if r.get("skipped"))
        records = sorted((r for r in by_qid.values() if not r.get("skipped")), key=lambda r: r["qid"])

        metrics = accuracy_metrics(records)
        metrics["skipped_train_videos"] = self.num_skipped_train_videos
        metrics["skipped_eval_videos"] = len(skipped)
        if skipped:
            logging.warning("%s: %d unreadable videos left out of the metrics: %s", split_name, len(skipped), skipped)
        result_dir = registry.get_path("result_dir")
        output_dir = registry.get_path("output_dir")
        metrics["evaluated_weights"] = self.evaluated_weights(epoch, output_dir)
        config_path = os.path.join(output_dir, "config.json")
        if self.cfg is not None and not os.path.exists(config_path):
            write_json(config_path, {"source": config_source(self.cfg),
                                     **OmegaConf.to_container(self.cfg.config, resolve=True)}, indent=2)
        # Whole files or none: a stop leaves the old result or the new one (the metrics come last).
        write_json(os.path.join(result_dir, f"{split_name}_epoch{epoch}.json"), records, indent=1)
        write_json(os.path.join(result_dir, f"{split_name}_epoch{epoch}_metrics.json"), metrics, indent=2)
        with open(os.path.join(output_dir, "evaluate.txt"), "a") as f:
            f.write(json.dumps({f"{split_name}_epoch{epoch}": metrics}) + "\n")
        if metrics.get("note"):
            logging.info("%s epoch %s: %s", split_name, epoch, metrics["note"])
        else:
            logging.info("%s epoch %s: accuracy %.2f over %d labelled questions", split_name, epoch,
                         metrics["accuracy"], metrics["labelled"])
        return metrics
