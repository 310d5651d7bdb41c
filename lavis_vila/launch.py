"""What ``python -m lavis_vila.train`` and ``.evaluate`` share: LAVIS's command line and set-up.

Under ``torchrun`` the process group uses nccl when the run is on GPU and gloo on CPU
(LAVIS's ``init_distributed_mode`` always asks for nccl).
"""
import argparse
import datetime
import logging
import os
import secrets

import torch
import torch.distributed as dist
from omegaconf import OmegaConf
from lavis.common.config import Config
from lavis.common.dist_utils import setup_for_distributed
from lavis.common.logger import setup_logger
from lavis import tasks
from lavis.common.registry import registry

import lavis_vila  # noqa: F401  (registers our classes)
from lavis_vila.config_check import check_names, registered
from lavis_vila.tasks.videoqa_mc import seed_everything
import lavis.runners  # noqa: F401  (registers runner_base)
import lavis.common.optims  # noqa: F401  (registers the lr schedulers)


class ProjectConfig(Config):
    """LAVIS's ``Config``, except that ``--options model.arch=A model.model_type=X`` load the model
    defaults of arch A and type X before the project's model block and the options (LAVIS looks
    for a flat ``model.model_type`` key, which ``--options`` never produces, and reads the arch
    from the YAML alone)."""

    @staticmethod
    def build_model_config(config, **kwargs):
        options = OmegaConf.create(dict(kwargs))
        arch, model_type = OmegaConf.select(options, "model.arch"), OmegaConf.select(options, "model.model_type")
        if arch:
            registered("model", arch, "--options model.arch")
            config = OmegaConf.merge(config, {"model": {"arch": arch}})
        return Config.build_model_config(config, **({"model.model_type": model_type} if model_type else {}))


def parse_args(argv=None, description=""):
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--cfg-path", required=True, help="path to the project YAML")
    parser.add_argument("--options", nargs="+", help="override config values: key=value (OmegaConf dotlist)")
    return parser.parse_args(argv)


def init_distributed(run_cfg) -> None:
    """Join the torchrun process group if there is one; record the layout in ``run_cfg``."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        run_cfg.distributed, run_cfg.gpu, run_cfg.rank, run_cfg.world_size = False, None, 0, 1
        return
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    on_gpu = torch.cuda.is_available() and str(run_cfg.get("device", "cuda")).startswith("cuda")
    backend = "nccl" if on_gpu else "gloo"
    if on_gpu:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend, init_method=run_cfg.get("dist_url", "env://"), world_size=world_size,
                            rank=rank, timeout=datetime.timedelta(hours=2))
    run_cfg.distributed, run_cfg.gpu, run_cfg.rank, run_cfg.world_size = True, local_rank, rank, world_size
    setup_for_distributed(rank == 0)
    logging.info("process group: rank %d of %d, backend %s", rank, world_size, backend)


def job_id() -> str:
    """A timestamp plus a random suffix, so runs started together get their own folders; every
    rank takes rank 0's, so all ranks write to one folder."""
    stamp = [f"{datetime.datetime.now():%Y%m%d%H%M%S}_{secrets.token_hex(3)}"]
    if dist.is_initialized():
        dist.broadcast_object_list(stamp, src=0)
    return stamp[0]


def setup(argv=None, description=""):
    """Parse, configure, seed and build: returns (cfg, task, datasets, model, job_id)."""
    args = parse_args(argv, description)
    check_names(OmegaConf.merge(OmegaConf.load(args.cfg_path), OmegaConf.from_dotlist(args.options or [])),
                args.cfg_path)
    cfg = ProjectConfig(args)
    init_distributed(cfg.run_cfg)
    # The same seed on every rank, so randomly initialised parts are identical across ranks; the
    # task reseeds each training epoch per rank for data order and augmentation.
    seed_everything(int(cfg.run_cfg.get("seed", 42)))
    setup_logger()
    cfg.pretty_print()
    task = tasks.setup_task(cfg)
    datasets = task.build_datasets(cfg)
    model = task.build_model(cfg)
    return cfg, task, datasets, model, job_id()


def build_runner(cfg, task, model, datasets, run_id):
    runner_cls = registry.get_runner_class(cfg.run_cfg.get("runner", "vila_runner"))
    return runner_cls(cfg=cfg, job_id=run_id, task=task, model=model, datasets=datasets)


def main(argv=None, evaluate: bool = False):
    """Train, or with ``evaluate`` run ``run.test_splits``; returns the runner (its ``output_dir``)."""
    what = "Evaluate" if evaluate else "Train"
    cfg, task, datasets, model, run_id = setup(argv, description=f"{what} a lavis_vila model.")
    runner = build_runner(cfg, task, model, datasets, run_id)
    try:
        if evaluate:
            runner.evaluate(skip_reload=True)
        else:
            runner.train()
    finally:
        if dist.is_initialized():  # a process group left to interpreter exit can abort (gloo)
            dist.destroy_process_group()
    return runner
