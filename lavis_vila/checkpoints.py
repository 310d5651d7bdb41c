"""Reading checkpoint files without running code in them.

A ``.pth`` is a pickle, and unpickling can run any code. Every file this project reads (ViT
weights, ``pretrained``, ``finetuned``, resume checkpoints, the tools' inputs) goes through
``load_checkpoint_file``, which loads with ``torch.load(weights_only=True)``: tensors, numbers,
strings and plain containers only. Every file we write and every file LAVIS released holds only
those. Anything else is refused, naming the file and the config key; nothing falls back to an
unsafe load.
"""
import os
import pickle
from urllib.parse import urlparse

import torch
from lavis.common.dist_utils import download_cached_file


class UnsafeCheckpointError(pickle.UnpicklingError):
    pass


def is_url(source: str) -> bool:
    return urlparse(str(source)).scheme in ("http", "https")


def resolve_file(source: str, config_key: str) -> str:
    """Return a local path for a URL (downloaded to LAVIS's cache) or an existing file."""
    if is_url(source):
        return download_cached_file(source, check_hash=False, progress=True)
    if os.path.isfile(source):
        return source
    raise FileNotFoundError(f"{config_key}: '{source}' is neither an existing file nor an http(s) URL")


def load_checkpoint_file(source: str, config_key: str, map_location="cpu"):
    """``torch.load(weights_only=True)`` of a local file or URL; ``config_key`` names it in errors."""
    path = resolve_file(source, config_key)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnsafeCheckpointError(
            f"{config_key}: refused to load '{path}': it holds objects other than tensors, numbers, strings "
            f"and plain containers, and unpickling them could run code ({reason}). If you trust the file, "
            f"write a copy of its weights that loads safely: python -m lavis_vila.tools.convert_checkpoint "
            f"--trust '{path}' weights.pth, then set {config_key} to weights.pth"
        ) from None


def load_state_dict_file(source: str, config_key: str) -> dict:
    """The state dict of a checkpoint: its ``model`` entry (LAVIS's layout) or the file itself."""
    checkpoint = load_checkpoint_file(source, config_key)
    return checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else checkpoint
