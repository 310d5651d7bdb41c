"""Where a call's time goes: inside library calls, which no compiler fuses away, or elsewhere.

Inductor leaves every matmul, attention and convolution to a library kernel (BLAS, oneDNN, cuBLAS,
the flash-attention kernels) and generates code only for the element-wise and reduction work
around them. So a compiled row's time in those calls is a floor under its latency: compiling
can make a video no faster than eager / (its library ms).

``library_ms(run, device)`` profiles one call (``torch.profiler``) and returns, in ms:

- ``library``: the self time of the library calls (``is_library_op``): their host time on a CPU,
  where the host does the arithmetic, and their kernels' device time on a GPU;
- ``device``: on a GPU, the device time of every kernel (None on a CPU). Latency far above it
  means the GPU waits on the host: launch-bound. Kernels replayed in a CUDA graph
  (``reduce-overhead``) count here but not in ``library``: the profiler sees the replay, not the
  ops that recorded them.
"""
from typing import Callable, Optional, Tuple

import torch
from torch.profiler import ProfilerActivity, profile

LIBRARY_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_addmm_activation"}
LIBRARY_OP_PARTS = ("scaled_dot_product", "convolution", "mkldnn::_linear")


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
    events = profiler.key_averages()
    own_us = (lambda e: e.self_device_time_total) if on_gpu else (lambda e: e.self_cpu_time_total)
    library = sum(own_us(e) for e in events if is_library_op(e.key)) / 1e3
    return library, (sum(e.self_device_time_total for e in events) / 1e3 if on_gpu else None)
