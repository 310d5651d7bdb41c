"""Where a call's time goes: inside library calls, which no compiler fuses away, or elsewhere.

Inductor leaves every matmul, attention and convolution to a library kernel (BLAS, oneDNN, cuBLAS,
the flash-attention kernels) and generates code only for the element-wise and reduction work
around them. So a compiled row's time in those calls is a floor under its latency: that compiled
build can make a video no faster than eager / (its library ms). (Inductor may change the library
calls themselves, for example attention written out by hand becomes one SDPA call, so the floor
is the build's, not every compiler's.)

``library_ms(run, device)`` profiles one call (``torch.profiler``) and returns, in ms:

- ``library``: the self time of the library calls (``is_library_op``): their host time on a CPU,
  where the host does the arithmetic, and their kernels' device time on a GPU (SDPA's too: under
  ``aten::_scaled_dot_product_flash_attention``, ``aten::_flash_attention_forward`` launches them);
- ``device``: on a GPU, the device time of every kernel (None on a CPU). Latency far above it
  means the GPU waits on the host: launch-bound.

The bench profiles no CUDA-graph row (``reduce-overhead``) on a GPU: CUPTI's view of a graph
replay is unreliable.
"""
from typing import Callable, Optional, Tuple

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

# By profiler name: the ops behind ``models.compiled.LIBRARY_CALLS`` (the graph calls inductor
# leaves to a library), and on a GPU the ops under scaled_dot_product_attention that launch its kernels.
LIBRARY_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_addmm_activation"}
LIBRARY_OP_PARTS = ("scaled_dot_product", "convolution", "mkldnn::_linear", "_flash_attention_forward",
                    "_efficient_attention_forward", "cudnn_attention")


def is_library_op(name: str) -> bool:
    """A matmul, an attention kernel or a convolution, by its profiler name (``aten::addmm``,
    ``aten::_scaled_dot_product_flash_attention_for_cpu``, ``aten::mkldnn_convolution``,
    ``mkldnn::_linear_pointwise`` after inductor's freezing, ...)."""
    return name in LIBRARY_OPS or any(part in name for part in LIBRARY_OP_PARTS)


def library_ms(run: Callable[[], object], device: torch.device) -> Tuple[float, Optional[float]]:
    """``(library, device)`` ms of one ``run()`` (see the module's docstring)."""
    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities) as profiler:
        run()
        if on_gpu:
            torch.cuda.synchronize(device)
    return split_ms(profiler.key_averages(), on_gpu)


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
