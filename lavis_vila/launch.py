"""What ``python -m lavis_vila.train`` and ``.evaluate`` share: LAVIS's command line and set-up
(the run-section settings it reads are in ``run_setup``)."""
import argparse

import torch.distributed as dist
from omegaconf import OmegaConf
from lavis.common.config import Config
from lavis.common.logger import setup_logger
from lavis import tasks
from lavis.common.registry import registry

from lavis_vila.config_check import check_names, config_source, registered
from lavis_vila.run_setup import init_distributed, job_id, log_process_group, run_seed, runner_name
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


def setup(argv=None, description="", evaluate: bool = False):
    """Parse, configure, seed and build: returns (cfg, task, datasets, model, job_id). With
    ``evaluate`` the run is an evaluation (``run.evaluate``) before the task, the datasets and the
    model are built, so a training config's train split and training batch are never set up."""
    args = parse_args(argv, description)
    check_names(OmegaConf.merge(OmegaConf.load(args.cfg_path), OmegaConf.from_dotlist(args.options or [])),
                config_source(args))
    cfg = ProjectConfig(args)
    if evaluate:
        cfg.run_cfg.evaluate = True  # an evaluation never trains: nor resumes a training run's folder
    init_distributed(cfg.run_cfg)
    # The same seed on every rank, so randomly initialised parts are identical across ranks; the
    # task reseeds each training epoch per rank for data order and augmentation.
    seed_everything(run_seed(cfg.run_cfg))
    setup_logger()  # needs the rank: INFO on the main process, WARNING on the others
    log_process_group(cfg.run_cfg)
    cfg.pretty_print()
    task = tasks.setup_task(cfg)
    datasets = task.build_datasets(cfg)
    model = task.build_model(cfg)
    return cfg, task, datasets, model, job_id()


def build_runner(cfg, task, model, datasets, run_id):
    runner_cls = registry.get_runner_class(runner_name(cfg.run_cfg))
    return runner_cls(cfg=cfg, job_id=run_id, task=task, model=model, datasets=datasets)


def main(argv=None, evaluate: bool = False):
    """Train, or with ``evaluate`` run ``run.test_splits``; returns the runner (its ``output_dir``)."""
    what = "Evaluate" if evaluate else "Train"
    cfg, task, datasets, model, run_id = setup(argv, description=f"{what} a lavis_vila model.", evaluate=evaluate)
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
