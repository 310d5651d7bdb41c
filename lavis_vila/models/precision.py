"""Mixed precision the way LAVIS runs it: fp16 autocast around the step, backbones at their own.

LAVIS trains under ``torch.cuda.amp.autocast`` (fp16) with a ``GradScaler``. Inside that region
each frozen backbone keeps the precision of its weights: the EVA ViT in fp16 with fp32
LayerNorms (LAVIS's ``convert_weights_to_fp16``), Flan-T5 in its own bf16 region (an fp16
Flan-T5 overflows), and numerically delicate parts (the Frame-Prompter's Gumbel choice, the
distillation loss) in fp32.
"""
import contextlib

import torch
from torch import nn

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def dtype_named(key: str, name: str) -> torch.dtype:
    """The dtype a precision key names (``fp32``, ``fp16``, ``bf16``); an error naming the key otherwise."""
    if name not in DTYPES:
        raise ValueError(f"{key} must be one of {', '.join(DTYPES)}, got {name!r}")
    return DTYPES[name]


def cast_matmul_weights(module: nn.Module, dtype: torch.dtype) -> None:
    """Cast the weights of every Linear and Conv to ``dtype``; norms and embeddings stay as they are.

    LAVIS's ``eva_vit.convert_weights_to_fp16`` does this for fp16 only; this also takes bf16.
    """
    for submodule in module.modules():
        if isinstance(submodule, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            submodule.to(dtype)


def autocast_to(device: torch.device, dtype: torch.dtype):
    """A region that computes in ``dtype`` whatever autocast surrounds it.

    fp16/bf16: autocast to that dtype. fp32: autocast off. A no-op on devices without autocast
    (the meta device of FLOP counts).
    """
    if device.type not in ("cuda", "cpu"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
