"""Where a call's time goes: inside library calls and tokenizers, which no compiler removes, or elsewhere.

Inductor leaves every matmul, attention and convolution to a library kernel (BLAS, oneDNN, cuBLAS,
the flash-attention kernels) and generates code only for the element-wise and reduction work
around them; the tokenizers run in Python before the graphs, compiled or not. So a compiled row's
time in those calls is a floor under its latency: that compiled build can make a video no faster
than eager / (its library ms + its tokenizer ms) on a CPU, where the host does both one after the
other, and eager / the larger of the two on a GPU, where the host tokenizes while kernels run
(``bench_report.latency_floor_ms``). (Inductor may change the library calls themselves, for
example attention written out by hand becomes one SDPA call, so the floor is the build's, not
every compiler's.)

``time_split(run, device)`` calls ``run`` ``TIMED_RUNS`` times, timing its tokenizer calls and
compiled parts, then once more profiled (``torch.profiler``: its cost per op would inflate the
other times; not with ``profiled=False``, which leaves ``library`` and ``device`` None), and
returns, in ms (the timed runs' medians: one run can fall on a garbage collection):

- ``library``: the self time of the library calls (``is_library_op``): their host time on a CPU,
  where the host does the arithmetic, and their kernels' device time on a GPU (SDPA's too: under
  ``aten::_scaled_dot_product_flash_attention``, ``aten::_flash_attention_forward`` launches them);
- ``device``: on a GPU, the device time of every kernel (None on a CPU). Latency far above it
  means the GPU waits on the host: launch-bound;
- ``tokenizers``: the host time in tokenizer calls (``PreTrainedTokenizerBase.__call__``);
- ``graphs`` and ``graph_entry``, for a compiled call (else None): the host time inside its
  compiled graphs (AOT autograd's wrappers included), and entering them
  (``models.compiled.CompileStats``: dynamo's guards, the parameters gathered as graph inputs,
  and any eager code between graph breaks, of which the parts have none today). On a CPU the
  graphs' time holds their arithmetic (library calls and generated kernels), so no compiled build
  of these graphs can make a video faster than eager / (graphs + tokenizers); on a GPU it is the
  host's time launching them. The entry's cost depends on how many modules and parameters a graph
  reads, not on its arithmetic: a host cost per graph call on any device.

The bench profiles no CUDA-graph row (``reduce-overhead``) on a GPU: CUPTI's view of a graph
replay is unreliable. It times their tokenizers, graphs and graph entry all the same.
"""
import time
from contextlib import contextmanager
from statistics import median
from typing import Callable, Iterator, List, NamedTuple, Optional, Tuple

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from transformers import PreTrainedTokenizerBase

from lavis_vila.models.compiled import STATS

TIMED_RUNS = 5  # runs timed apart from the profiled one; their medians are reported
# By profiler name: the ops behind ``models.compiled.LIBRARY_CALLS`` (the graph calls inductor
# leaves to a library), and on a GPU the ops under scaled_dot_product_attention that launch its kernels.
LIBRARY_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_addmm_activation"}
LIBRARY_OP_PARTS = ("scaled_dot_product", "convolution", "mkldnn::_linear", "_flash_attention_forward",
                    "_efficient_attention_forward", "cudnn_attention")


class TimeSplit(NamedTuple):
    """ms of one call: in library calls (None unprofiled), on a GPU in any kernel (else None), in
    tokenizer calls, and for a compiled call inside its graphs and entering them (else None)."""

    library: Optional[float]
    device: Optional[float]
    tokenizers: float
    graphs: Optional[float] = None
    graph_entry: Optional[float] = None


def is_library_op(name: str) -> bool:
    """A matmul, an attention kernel or a convolution, by its profiler name (``aten::addmm``,
    ``aten::_scaled_dot_product_flash_attention_for_cpu``, ``aten::mkldnn_convolution``,
    ``mkldnn::_linear_pointwise`` after inductor's freezing, ...)."""
    return name in LIBRARY_OPS or any(part in name for part in LIBRARY_OP_PARTS)


@contextmanager
def timed_tokenizers() -> Iterator[List[float]]:
    """Yield a list that collects the seconds of each tokenizer call made in the block. It replaces
    ``PreTrainedTokenizerBase.__call__`` for the whole process meanwhile: for a single-threaded
    measurement like the bench's."""
    call = PreTrainedTokenizerBase.__call__
    seconds = []

    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return call(self, *args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    PreTrainedTokenizerBase.__call__ = timed
    try:
        yield seconds
    finally:
        PreTrainedTokenizerBase.__call__ = call


def time_split(run: Callable[[], object], device: torch.device, timed_runs: int = TIMED_RUNS,
               profiled: bool = True) -> TimeSplit:
    """See the module's docstring."""
    on_gpu = device.type == "cuda"
    tokenizers, graphs, entries = [], [], []
    for _ in range(timed_runs):
        parts_before, graphs_before = STATS.part_seconds, STATS.graph_seconds
        with timed_tokenizers() as seconds:
            run()
        part, graph = STATS.part_seconds - parts_before, STATS.graph_seconds - graphs_before
        tokenizers.append(sum(seconds) * 1e3)
        graphs.append(graph * 1e3)
        entries.append((part - graph) * 1e3)
    compiled = {"graphs": median(graphs), "graph_entry": median(entries)} if any(graphs) else {}
    if not profiled:
        return TimeSplit(None, None, tokenizers=median(tokenizers), **compiled)
    if on_gpu:  # the profiled run starts with no kernel of the timed ones still running
        torch.cuda.synchronize(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities) as profiler:
        run()
        if on_gpu:
            torch.cuda.synchronize(device)
    return TimeSplit(*split_ms(profiler.key_averages(), on_gpu), tokenizers=median(tokenizers), **compiled)


def split_ms(events, on_gpu: bool) -> Tuple[float, Optional[float]]:
    """``(library, device)`` ms of a profile's averaged events (``FunctionEventAvg``s)."""
    own_us = (lambda e: e.self_device_time_total) if on_gpu else (lambda e: e.self_cpu_time_total)
    # The ops (CPU events), not the kernels they launch: a kernel's own name could match too.
    library = sum(own_us(e) for e in events if e.device_type == DeviceType.CPU and is_library_op(e.key)) / 1e3
    if not on_gpu:
        return library, None
    # Each kernel's time is also credited to the CPU op that launched it: count the kernels alone.
    kernels = [e for e in events if e.device_type == DeviceType.CUDA and not e.is_user_annotation]
    return library, sum(e.self_device_time_total for e in kernels) / 1e3
