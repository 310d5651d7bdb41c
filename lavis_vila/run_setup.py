"""The run-section settings that ``python -m lavis_vila.train`` reads when it launches: the process
group, the seed, the runner and the job folder's id. ``config_check`` reads this module's source
for the ``run`` keys it knows.

Under ``torchrun`` the process group uses nccl when the run is on GPU and gloo on CPU
(LAVIS's ``init_distributed_mode`` always asks for nccl), and each restart of the workers
(``torchrun --max-restarts``) rendezvouses under its own prefix.
"""
import builtins
import datetime
import logging
import os
import secrets
import sys

import torch
import torch.distributed as dist

DEFAULT_RUNNER, DEFAULT_SEED = "vila_runner", 42
logger = logging.getLogger(__name__)


def runner_name(run_cfg) -> str:
    return run_cfg.get("runner", DEFAULT_RUNNER)


def run_seed(run_cfg) -> int:
    return int(run_cfg.get("seed", DEFAULT_SEED))


def init_distributed(run_cfg) -> None:
    """Join the torchrun process group if there is one; record the layout in ``run_cfg``. It logs
    nothing: LAVIS's logger can only be set up once the rank is known (``log_process_group`` after it)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        run_cfg.distributed, run_cfg.gpu, run_cfg.rank, run_cfg.world_size = False, None, 0, 1
        return
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    on_gpu = torch.cuda.is_available() and str(run_cfg.get("device", "cuda")).startswith("cuda")
    backend = "nccl" if on_gpu else "gloo"
    if on_gpu:
        torch.cuda.set_device(local_rank)
    timeout = datetime.timedelta(hours=2)
    store = attempt_store(run_cfg.get("dist_url", "env://"), rank, world_size, timeout)
    dist.init_process_group(backend, store=store, world_size=world_size, rank=rank, timeout=timeout)
    run_cfg.distributed, run_cfg.gpu, run_cfg.rank, run_cfg.world_size = True, local_rank, rank, world_size
    print_to_stdout_on_main_rank_only(rank == 0)


def print_to_stdout_on_main_rank_only(is_main: bool) -> None:
    """LAVIS's convention for ``print`` under torchrun: only the main rank prints to stdout
    (``print(..., force=True)`` prints on any rank). Unlike LAVIS's ``setup_for_distributed``, a
    ``print`` to any other file is kept: Python 3.13 prints an uncaught exception's traceback with
    ``print(..., file=sys.stderr)``, so LAVIS's would leave another rank's crash without a word."""
    builtin_print = builtins.print

    def print(*args, force: bool = False, **kwargs):
        if is_main or force or kwargs.get("file") not in (None, sys.stdout):
            builtin_print(*args, **kwargs)

    builtins.print = print


def log_process_group(run_cfg) -> None:
    """Under torchrun, this process's place in the process group (INFO: the main process shows it)."""
    if run_cfg.distributed:
        logger.info("process group: rank %d of %d, backend %s", run_cfg.rank, run_cfg.world_size, dist.get_backend())


def attempt_store(init_method: str, rank: int, world_size: int, timeout):
    """The rendezvous store of ``init_method``, its keys under this start's prefix. ``torchrun
    --max-restarts`` restarts the workers on the same store, where the previous attempt's workers
    left their addresses: without the prefix a restarted worker may read a dead one's address
    and fail to connect (gloo)."""
    store, _, _ = next(dist.rendezvous(init_method, rank, world_size, timeout=timeout))
    return dist.PrefixStore(f"attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def job_id() -> str:
    """A timestamp plus a random suffix, so runs started together get their own folders; every
    rank takes rank 0's, so all ranks write to one folder."""
    stamp = [f"{datetime.datetime.now():%Y%m%d%H%M%S}_{secrets.token_hex(3)}"]
    if dist.is_initialized():
        dist.broadcast_object_list(stamp, src=0)
    return stamp[0]
