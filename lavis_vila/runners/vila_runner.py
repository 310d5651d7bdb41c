"""Runner ``vila_runner``: LAVIS's ``RunnerBase`` made to work on CPU, in one process, and on resume.

What it changes, and why (see research/sevila_lavis.md B5):
- data path: plain ``DataLoader``s, no ``PrefetchLoader`` (which creates CUDA streams) and no
  ``IterLoader`` (whose eagerly drawn iterator would break resume equality);
- device: ``run.device: cuda`` falls back to CPU when no GPU is visible;
- ``run.amp``: the ``GradScaler`` is made for the run's device (LAVIS's is CUDA-only);
- barriers only when a process group exists (LAVIS issue #537);
- DDP: ``device_ids`` only on GPU; ``run.find_unused_parameters`` (default False) is honoured;
- output: a relative ``run.output_dir`` resolves against the current directory, not
  site-packages; a second runner in one process may re-register the paths;
- checkpoints: ``checkpoint_<epoch>.pth`` every epoch, written before validation so a failing
  validation loses no training (plus ``checkpoint_best.pth``), holding the trainable weights,
  optimizer, scaler, epoch, best-so-far and the whole config (the model's included);
- resume: frozen weights absent from the checkpoint are allowed; any *trainable* weight missing
  is an error. The resumed epoch is validated again (a stop may have cut its validation short,
  and its metric decides the best epoch), then the epoch loop and the task's per-epoch reseeding
  replay the same schedule;
- ``run.resume: auto``: the run trains in ``run.output_dir`` itself and continues from the newest
  complete checkpoint there (``run_folder``); ``off`` (default): LAVIS's new folder per start;
- ``run.lr_scales`` ({parameter-name prefix: factor}, e.g. ``{frame_prompter: 3}``) multiplies
  the scheduled learning rate of those parameters (LAVIS's ``runner_base`` ignores it); a prefix
  that applies to no trainable parameter is an error;
- a run that would train nothing (``run.max_epoch`` 0, a training split smaller than one batch)
  is an error saying so, before any checkpoint to resume is chosen or read.
"""
import datetime
import logging
import os
import time

import torch
import torch.distributed as dist
from lavis.common.dist_utils import get_rank, get_world_size, is_dist_avail_and_initialized, is_main_process, main_process
from lavis.common.registry import registry
from lavis.runners.runner_base import RunnerBase
from omegaconf import OmegaConf
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler

from lavis_vila.atomic_files import save_with
from lavis_vila.checkpoints import CheckpointError, load_checkpoint_file
from lavis_vila.registry import register_runner
from lavis_vila.runners.run_folder import run_folder
from lavis_vila.runners.weight_decay import gets_weight_decay


def barrier() -> None:
    if is_dist_avail_and_initialized():
        dist.barrier()


class ScaledLRScheduler:
    """Wraps a LAVIS scheduler: after it sets every group's lr, apply each group's ``lr_scale``."""

    def __init__(self, scheduler, optimizer):
        self.scheduler, self.optimizer = scheduler, optimizer

    def step(self, cur_epoch, cur_step):
        self.scheduler.step(cur_epoch=cur_epoch, cur_step=cur_step)
        for group in self.optimizer.param_groups:
            group["lr"] *= group.get("lr_scale", 1.0)


@register_runner("vila_runner")
class VilaRunner(RunnerBase):
    @property
    def device(self):
        if self._device is None:
            requested = torch.device(self.config.run_cfg.get("device", "cpu"))
            if requested.type == "cuda" and not torch.cuda.is_available():
                logging.warning("run.device is cuda but no GPU is visible: running on CPU")
                requested = torch.device("cpu")
            if requested.type == "cuda" and self.use_distributed:
                requested = torch.device("cuda", self.config.run_cfg.gpu)
            self._device = requested
        return self._device

    @property
    def model(self):
        if self._wrapped_model is None:
            self._model = self._model.to(self.device)
            if self.use_distributed:
                self._wrapped_model = DDP(
                    self._model,
                    device_ids=[self.device.index] if self.device.type == "cuda" else None,
                    find_unused_parameters=bool(self.config.run_cfg.get("find_unused_parameters", False)),
                )
            else:
                self._wrapped_model = self._model
        return self._wrapped_model

    @property
    def scaler(self):
        if self._scaler is None and self.config.run_cfg.get("amp", False):
            self._scaler = torch.amp.GradScaler(self.device.type)
        return self._scaler

    @property
    def optimizer(self):
        """LAVIS's AdamW (no decay on biases, norms and 1-d parameters, read on the official code's
        names: ``runners.weight_decay``), plus ``run.lr_scales``."""
        if self._optimizer is None:
            run = self.config.run_cfg
            scales = dict(run.get("lr_scales") or {})
            groups, scaled = {}, set()
            for name, param in self.model.named_parameters():
                if not param.requires_grad:
                    continue
                name = name.removeprefix("module.")
                no_decay = not gets_weight_decay(name, param, run.get("weight_decay_names", "official"))
                prefix = next((prefix for prefix in scales if name.startswith(prefix)), None)
                scale = scales[prefix] if prefix is not None else 1.0
                scaled.add(prefix)
                group = groups.setdefault((no_decay, scale), {
                    "params": [], "weight_decay": 0.0 if no_decay else float(run.weight_decay), "lr_scale": float(scale)})
                group["params"].append(param)
            unused = [prefix for prefix in scales if prefix not in scaled]
            if unused:
                trainable = sorted({name.removeprefix("module.").split(".")[0]
                                    for name, param in self.model.named_parameters() if param.requires_grad})
                raise ValueError(f"run.lr_scales: {unused} applies to no trainable parameter of "
                                 f"{type(self.unwrap_dist_model(self.model)).__name__} (none starts with it, or an "
                                 f"earlier prefix took them all); trainable parameters start with {trainable}")
            logging.info("trainable parameters: %d", sum(p.numel() for g in groups.values() for p in g["params"]))
            self._optimizer = torch.optim.AdamW(list(groups.values()), lr=float(run.init_lr),
                                                betas=(0.9, run.get("beta2", 0.999)))
        return self._optimizer

    @property
    def lr_scheduler(self):
        if self._lr_sched is None:
            self._lr_sched = ScaledLRScheduler(RunnerBase.lr_scheduler.fget(self), self.optimizer)
        return self._lr_sched

    @property
    def resume(self):
        """``run.resume``: ``auto`` continues a training run in ``run.output_dir``; an evaluation never resumes."""
        resume = "off" if self.evaluate_only else self.config.run_cfg.get("resume", "off")
        if resume == "auto" and self.resume_ckpt_path:
            raise ValueError(f"run.resume: auto and run.resume_ckpt_path ({self.resume_ckpt_path}) are both set: "
                             f"auto resumes from run.output_dir's newest checkpoint, resume_ckpt_path from that file; "
                             f"choose one")
        return resume

    def setup_output_dir(self):
        self.run_folder = run_folder(self.resume, self.config.run_cfg.output_dir, self.job_id)
        output_dir = self.run_folder.path
        result_dir = output_dir / "result"
        if is_main_process():
            self.run_folder.claim()
            result_dir.mkdir(exist_ok=True)
        barrier()
        registry.mapping["paths"]["output_dir"] = str(output_dir)
        registry.mapping["paths"]["result_dir"] = str(result_dir)
        self.output_dir, self.result_dir = output_dir, result_dir

    def create_loaders(self, datasets, num_workers, batch_sizes, is_trains, collate_fns, dataset_ratios=None):
        loaders = []
        for dataset, batch_size, is_train, collate_fn in zip(datasets, batch_sizes, is_trains, collate_fns):
            if isinstance(dataset, (list, tuple)):
                raise NotImplementedError("vila_runner takes one map-style dataset per split")
            sampler = None
            if self.use_distributed:
                sampler = DistributedSampler(dataset, shuffle=is_train, num_replicas=get_world_size(), rank=get_rank())
            loader = DataLoader(
                dataset,
                batch_size=batch_size,
                num_workers=num_workers,
                pin_memory=self.device.type == "cuda",
                sampler=sampler,
                shuffle=sampler is None and is_train,
                collate_fn=collate_fn,
                drop_last=is_train,
            )
            loaders.append(loader)
        return loaders

    def train_epoch(self, epoch):
        """Like LAVIS's, but the task gets a plain DataLoader, so each epoch's iterator (shuffle
        order, worker seeds) is drawn after the task reseeds for that epoch."""
        sampler = self.train_loader.sampler
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        return super().train_epoch(epoch)

    def train(self):
        try:
            self._train()
        finally:
            self.run_folder.release()

    def _train(self):
        start_time = time.time()
        self.best_agg_metric, self.best_epoch = 0.0, 0
        resume_from, chosen_by = None, None
        if not self.evaluate_only:
            self.check_something_to_train()
            resume_from, chosen_by = self.checkpoint_and_its_setting()
        if resume_from:
            self._load_checkpoint(resume_from, chosen_by)
        self.log_config()
        if resume_from:
            self.log_stats({"from": str(resume_from), "next_epoch": self.start_epoch}, "resumed")
            self.validate(self.start_epoch - 1)  # a stop may have cut it short; it may be the best epoch

        for cur_epoch in range(self.start_epoch, self.max_epoch):
            if not self.evaluate_only:
                logging.info("Start training epoch %d", cur_epoch)
                self.log_stats(split_name="train", stats=self.train_epoch(cur_epoch))
                self._save_checkpoint(cur_epoch, is_best=False)  # before validation, which may fail
            self.validate(cur_epoch)
            if self.evaluate_only:
                break
            barrier()

        has_best = os.path.isfile(os.path.join(self.output_dir, "checkpoint_best.pth"))
        self.evaluate(cur_epoch="best" if has_best else self.max_epoch - 1,
                      skip_reload=self.evaluate_only or not has_best)
        logging.info("Training time %s", datetime.timedelta(seconds=int(time.time() - start_time)))

    def validate(self, cur_epoch):
        """Evaluate ``valid_splits``; a new best ``val`` metric writes ``checkpoint_best.pth``."""
        for split_name in self.valid_splits:
            val_log = self.eval_epoch(split_name=split_name, cur_epoch=cur_epoch)
            if val_log is not None and is_main_process():
                if split_name == "val" and val_log["agg_metrics"] > self.best_agg_metric:
                    self.best_epoch, self.best_agg_metric = cur_epoch, val_log["agg_metrics"]
                    self._save_checkpoint(cur_epoch, is_best=True)
                val_log["best_epoch"] = self.best_epoch
                self.log_stats(val_log, split_name)

    def check_something_to_train(self):
        """A run that would train nothing is an error, not an evaluation of an untrained model."""
        run = self.config.run_cfg
        if self.max_epoch < 1:
            raise ValueError(f"run.max_epoch is {run.max_epoch}: this run would train nothing. To evaluate a "
                             f"model, run python -m lavis_vila.evaluate (or set run.evaluate: True).")
        if len(self.train_loader) == 0:
            dataset = self.train_loader.dataset
            raise ValueError(
                f"the training split has {len(dataset)} records, fewer than one batch of run.batch_size_train "
                f"{run.batch_size_train} per process x {get_world_size()} process(es) (a training batch is never "
                f"partial): this run would train nothing. Lower run.batch_size_train (or run.global_batch_size).")

    def checkpoint_and_its_setting(self):
        """The checkpoint this training continues from and the setting that chose it, which its errors
        name; ``(None, None)`` for a fresh start."""
        if self.resume_ckpt_path:
            return self.resume_ckpt_path, "run.resume_ckpt_path"
        chosen = self.checkpoint_to_resume()
        if chosen is None:
            return None, None
        return chosen, f"run.resume: auto (newest checkpoint in {self.output_dir})"

    def checkpoint_to_resume(self):
        """``run.resume: auto``: the newest complete checkpoint in the run folder, chosen by the main
        process for every rank; ``None`` to start fresh."""
        choice = [None]
        if is_main_process():
            model_config = OmegaConf.to_container(self.config.config.model, resolve=True)
            choice = [self.run_folder.checkpoint_to_resume(model_config)]
        if is_dist_avail_and_initialized():
            dist.broadcast_object_list(choice, src=0)
        return choice[0]

    def trainable_state_dict(self) -> dict:
        """Trainable parameters and buffers; frozen parameters (under every alias) are left out."""
        model = self.unwrap_dist_model(self.model)
        return {
            name: tensor.detach()
            for name, tensor in model.state_dict(keep_vars=True).items()
            if not (isinstance(tensor, torch.nn.Parameter) and not tensor.requires_grad)
        }

    @main_process
    def _save_checkpoint(self, cur_epoch, is_best=False):
        checkpoint = {
            "model": self.trainable_state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "config": OmegaConf.to_container(self.config.config, resolve=True),  # ${...} resolved
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "epoch": cur_epoch,
            "best_agg_metric": self.best_agg_metric,
            "best_epoch": self.best_epoch,
        }
        path = os.path.join(self.output_dir, f"checkpoint_{'best' if is_best else cur_epoch}.pth")
        logging.info("Saving checkpoint at epoch %d to %s", cur_epoch, path)
        save_with(lambda tmp: torch.save(checkpoint, tmp), path)  # a stopped run never leaves a half-written one

    def load_trainable_weights(self, model, state_dict, source: str):
        """Load a checkpoint that holds the trainable weights; frozen ones may be absent."""
        result = model.load_state_dict(state_dict, strict=False)
        trainable = {name for name, param in model.named_parameters() if param.requires_grad}
        missing = sorted(trainable.intersection(result.missing_keys))
        if missing:
            raise KeyError(f"{source} lacks trainable parameters {missing[:10]} ({len(missing)} in all)")
        if result.unexpected_keys:
            raise KeyError(f"{source} has parameters this model does not: {result.unexpected_keys[:10]}")
        return model

    def _reload_best_model(self, model):
        path = os.path.join(self.output_dir, "checkpoint_best.pth")
        logging.info("Loading checkpoint from %s", path)
        checkpoint = load_checkpoint_file(path, "checkpoint_best")
        return self.load_trainable_weights(model, checkpoint["model"], path)

    def _load_checkpoint(self, url_or_filename, chosen_by: str = "run.resume_ckpt_path"):
        """Resume: weights, optimizer, scaler, the next epoch and the best metric of the epochs before
        the checkpoint's own (whose validation ``train`` runs again). ``chosen_by``, the setting that
        chose the file (``run.resume_ckpt_path`` or ``run.resume: auto (...)``), is named in its errors;
        its default keeps LAVIS's one-argument calls (``RunnerBase.train``) working."""
        if not os.path.isfile(url_or_filename):
            raise FileNotFoundError(f"{chosen_by}: no checkpoint file at {url_or_filename}")
        checkpoint = load_checkpoint_file(url_or_filename, chosen_by, map_location=self.device)
        missing = [key for key in ("model", "optimizer", "epoch") if key not in checkpoint]
        if missing:
            raise CheckpointError(f"{chosen_by}: '{url_or_filename}' is not a training checkpoint written "
                                  f"by this runner (no {missing}); to start from its weights use model.finetuned")
        self.load_trainable_weights(self.unwrap_dist_model(self.model), checkpoint["model"],
                                    f"{chosen_by}: '{url_or_filename}'")
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scaler and checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.start_epoch = checkpoint["epoch"] + 1
        self.best_agg_metric, self.best_epoch = checkpoint.get("best_agg_metric", 0.0), checkpoint.get("best_epoch", 0)
        logging.info("Resumed from %s at epoch %d", url_or_filename, self.start_epoch)
