"""The recipe's global batch and warm-up on any number of GPUs.

``run.global_batch_size`` is the official recipe's effective batch (per-GPU batch x GPUs x
accumulation steps, 64 for most ViLA runs). ``run.batch_size_train`` is then the most one GPU
may hold. ``apply_global_batch`` sets ``batch_size_train`` and ``accum_grad_iters`` for the
run's world size, so 4 and 8 GPUs train with the same global batch and learning rate.

LAVIS's scheduler counts warm-up in iterations (``run.warmup_steps``), one per micro-batch of
every process, so one iteration holds per-GPU batch x GPUs samples: on 8 GPUs an official
4-GPU recipe's 500 iterations would cover twice its samples. ``run.warmup_samples`` states the
official warm-up in samples (its iterations x its per-GPU batch x its GPUs); ``warmup_steps`` is
then set to the iterations that cover as many samples on this run's GPUs (to the nearest one).

The first process of every node logs the arithmetic with its node's place in the run, so each
node's own output shows the global batch (LAVIS's logger shows INFO on the main process only).
"""
import logging
import math
import os
from typing import Mapping, NamedTuple

logger = logging.getLogger(__name__)


class BatchSplit(NamedTuple):
    per_gpu: int
    accum_grad_iters: int
    world_size: int

    @property
    def global_batch(self) -> int:
        return self.per_gpu * self.accum_grad_iters * self.world_size

    @property
    def samples_per_iteration(self) -> int:
        """What one scheduler step (one micro-batch on every process) consumes."""
        return self.per_gpu * self.world_size


def split_global_batch(global_batch: int, world_size: int, max_per_gpu: int) -> BatchSplit:
    """The fewest accumulation steps whose per-GPU batch fits ``max_per_gpu`` and whose product is
    exactly ``global_batch``; when none is exact, ``max_per_gpu`` with the nearest step count."""
    if global_batch < 1 or world_size < 1 or max_per_gpu < 1:
        raise ValueError(f"global batch {global_batch}, world size {world_size} and per-GPU batch {max_per_gpu} "
                         f"must all be positive")
    for accum in range(math.ceil(global_batch / (world_size * max_per_gpu)), global_batch + 1):
        per_gpu, remainder = divmod(global_batch, world_size * accum)
        if per_gpu == 0:
            break
        if remainder == 0:
            return BatchSplit(per_gpu, accum, world_size)
    accum = max(1, round(global_batch / (world_size * max_per_gpu)))
    return BatchSplit(max_per_gpu, accum, world_size)


def warmup_iterations(warmup_samples: int, split: BatchSplit) -> int:
    """The scheduler iterations that cover ``warmup_samples`` with ``split`` (nearest; within half an iteration)."""
    if warmup_samples < 0:
        raise ValueError(f"run.warmup_samples must be 0 or more, got {warmup_samples}")
    return round(warmup_samples / split.samples_per_iteration)


def apply_warmup(run, split: BatchSplit) -> None:
    """Set ``run.warmup_steps`` from ``run.warmup_samples`` (if given)."""
    samples = run.get("warmup_samples")
    if samples is None:
        return
    steps = warmup_iterations(int(samples), split)
    if run.get("warmup_steps") is not None and int(run.warmup_steps) != steps:
        raise ValueError(f"run.warmup_samples ({samples}) and run.warmup_steps ({run.warmup_steps}) are both set: "
                         f"warmup_steps follows from warmup_samples for the run's GPU count; drop one of them")
    run.warmup_steps = steps


def apply_global_batch(run, world_size: int) -> BatchSplit:
    """Set ``run.batch_size_train``/``accum_grad_iters`` from ``run.global_batch_size`` and
    ``run.warmup_steps`` from ``run.warmup_samples`` (each if given); log the global batch and the
    warm-up either way, and warn when the recipe's batch cannot be reached exactly."""
    per_gpu, accum = int(run.get("batch_size_train", 1)), int(run.get("accum_grad_iters", 1))
    recipe = run.get("global_batch_size")
    if recipe is None:
        split = BatchSplit(per_gpu, accum, world_size)
    else:
        split = split_global_batch(int(recipe), world_size, per_gpu)
        run.batch_size_train, run.accum_grad_iters = split.per_gpu, split.accum_grad_iters
    apply_warmup(run, split)
    log_global_batch(split, recipe, per_gpu, run.get("warmup_steps"), run.get("warmup_samples"))
    return split


class NodeLayout(NamedTuple):
    node_rank: int
    nodes: int
    local_rank: int
    per_node: int


def node_layout(world_size: int, environ: Mapping[str, str] = os.environ) -> NodeLayout:
    """This process's node and place in it, from torchrun's variables (one node without them)."""
    per_node = int(environ.get("LOCAL_WORLD_SIZE", world_size))
    nodes = int(environ.get("GROUP_WORLD_SIZE", max(1, world_size // per_node)))
    return NodeLayout(int(environ.get("GROUP_RANK", 0)), nodes, int(environ.get("LOCAL_RANK", 0)), per_node)


def log_global_batch(split: BatchSplit, recipe, max_per_gpu: int, warmup_steps=None, warmup_samples=None,
                     environ: Mapping[str, str] = os.environ) -> None:
    """On each node's first process: the global batch, its factors, the warm-up it implies and the
    node's place in the run; a warning when ``run.global_batch_size`` (``recipe``) cannot be reached exactly."""
    layout = node_layout(split.world_size, environ)
    if layout.local_rank != 0:
        return
    logger.setLevel(logging.INFO)  # also on nodes other than the main process's
    warmup_steps = int(warmup_steps or 0)
    logger.info("global batch %d = %d process(es) x %d per process x %d accumulation step(s); warm-up %d "
                "iteration(s) = %d samples%s [node rank %d; %d node(s) x %d process(es) per node = world size %d]",
                split.global_batch, split.world_size, split.per_gpu, split.accum_grad_iters,
                warmup_steps, warmup_steps * split.samples_per_iteration,
                f" (run.warmup_samples {warmup_samples})" if warmup_samples is not None else "",
                layout.node_rank, layout.nodes, layout.per_node, split.world_size)
    if recipe is not None and split.global_batch != int(recipe):
        logger.warning("run.global_batch_size %s cannot be reached exactly with %d process(es) and at most %d per "
                       "process: training with a global batch of %d", recipe, split.world_size, max_per_gpu,
                       split.global_batch)
