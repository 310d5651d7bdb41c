"""What decides a GPU's speed besides FLOPs, counted on any device: aten ops and host syncs.

- ``count_aten_ops``: every aten op a call dispatches (a ``TorchDispatchMode``), deterministic
  and independent of the device, so it is counted on the meta device at full size. In eager
  PyTorch each is at least one kernel launch.
- ``count_host_syncs``: the calls that read a tensor's value into Python, each of which waits
  for a GPU (``torch.cuda.set_sync_debug_mode`` reports them on CUDA only). It patches, for the
  duration, the ``torch.Tensor`` methods that do so (``SYNCING_METHODS``) and ``torch.nonzero``
  with counting wrappers: a patch sees eager code and the Python between compiled graphs alike,
  where a ``TorchFunctionMode`` would be traced into the graphs by ``torch.compile``. Not seen:
  data-dependent aten ops called without Python (boolean-mask indexing), which the inference
  path does not use.
"""
from collections import Counter
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lavis_vila.models.compiled import inside_compiled_part

SYNCING_METHODS = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "nonzero", "cpu", "numpy")


class AtenOpCounter(TorchDispatchMode):
    """Counts the aten ops dispatched, by name, except inside a compiled part of a model (which
    runs eagerly under a dispatch mode, while its kernels are counted by ``compiled.STATS``)."""

    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not inside_compiled_part():
            self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def count_aten_ops(run: Callable[[], object]) -> int:
    """The aten ops ``run()`` dispatches outside compiled parts (an eager model: all of them)."""
    with AtenOpCounter() as counter:
        run()
    return sum(counter.ops.values())


@contextmanager
def count_host_syncs() -> Iterator[Counter]:
    """Yield a Counter of the syncing calls (by method name) made inside the block."""
    counts = Counter()
    originals = {name: getattr(torch.Tensor, name) for name in SYNCING_METHODS}
    original_nonzero = torch.nonzero

    def counting(name, method):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return method(*args, **kwargs)
        return wrapper

    try:
        for name, method in originals.items():
            setattr(torch.Tensor, name, counting(name, method))
        torch.nonzero = counting("nonzero", original_nonzero)
        yield counts
    finally:
        for name, method in originals.items():
            setattr(torch.Tensor, name, method)
        torch.nonzero = original_nonzero
