"""Reading checkpoint files without running code in them.

A ``.pth`` is a pickle, and unpickling can run any code. Every file this project reads (ViT
weights, ``pretrained``, ``finetuned``, resume checkpoints, the tools' inputs) goes through
``load_checkpoint_file``, which loads with ``torch.load(weights_only=True)``: tensors, numbers,
strings and plain containers only. Every file we write and every file LAVIS released holds only
those. Anything else is refused, naming the file and the config key; nothing falls back to an
unsafe load. ``.safetensors`` files (and saved-model folders holding ``model.safetensors``, see
``lavis_vila.saved_model``) hold tensors only by design and load as ``{"model": tensors}`` plus
their metadata. ``load_into`` also refuses a checkpoint that does not cover the model it is
loaded into, and reads a checkpoint of the official ViLA code under its names
(``lavis_vila.official_names``).
"""
import json
import logging
import os
import re
from urllib.parse import urlparse

import torch
from safetensors import SafetensorError, safe_open

from lavis_vila import official_names

SAFETENSORS_WEIGHTS = "model.safetensors"  # the weights file of a saved-model folder


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the config key."""


class UnsafeCheckpointError(CheckpointError):
    """The file holds objects whose unpickling could run code; it was not loaded."""


def is_url(source: str) -> bool:
    return urlparse(str(source)).scheme in ("http", "https")


def resolve_file(source: str, config_key: str) -> str:
    """Return a local path for a URL (downloaded to LAVIS's cache) or an existing file."""
    if is_url(source):
        from lavis.common.dist_utils import download_cached_file  # LAVIS's cache; imported on use only

        return download_cached_file(source, check_hash=False, progress=True)
    if os.path.isfile(source):
        return source
    if os.path.isdir(source):
        weights = os.path.join(source, SAFETENSORS_WEIGHTS)
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"{config_key}: the folder '{source}' holds no {SAFETENSORS_WEIGHTS} (a saved-model "
                                    f"folder written by lavis_vila.saved_model or tools.export has one)")
        return weights
    raise FileNotFoundError(f"{config_key}: '{source}' is neither an existing file, a saved-model folder nor an "
                            f"http(s) URL")


def load_safetensors_file(path: str, config_key: str, map_location="cpu") -> dict:
    """``{"model": tensors}`` plus the file's metadata, each value JSON-decoded where it is JSON."""
    device = str(map_location) if map_location is not None else "cpu"
    try:
        with safe_open(path, framework="pt", device=device) as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{config_key}: '{path}' is not a readable safetensors file (truncated, or another kind "
                              f"of file): {error}") from error
    return {**{key: decode_metadata(value) for key, value in metadata.items() if key != "format"}, "model": tensors}


def decode_metadata(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value


def load_checkpoint_file(source: str, config_key: str, map_location="cpu", mmap: bool = False):
    """``torch.load(weights_only=True)`` of a local file or URL; ``config_key`` names it in errors."""
    path = resolve_file(source, config_key)
    if path.endswith(".safetensors"):
        return load_safetensors_file(path, config_key, map_location)
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as error:  # torch's own messages name no file and no config key
        message = str(error)
        unsafe = re.search(r"Unsupported global: (GLOBAL [\w.]+)", message)
        if unsafe:
            raise UnsafeCheckpointError(
                f"{config_key}: refused to load '{path}': it holds objects other than tensors, numbers, strings "
                f"and plain containers ({unsafe.group(1)}), and unpickling them could run code. If you trust the "
                f"file, write a copy of its weights that loads safely: python -m lavis_vila.tools.convert_checkpoint "
                f"--trust '{path}' --out weights.pth, then set {config_key} to weights.pth") from None
        detail = next((line.strip() for line in message.splitlines() if line.strip()), "")
        if "WeightsUnpickler error" in message:
            detail = message.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
        raise CheckpointError(
            f"{config_key}: '{path}' is not a readable PyTorch checkpoint (truncated, or another kind of file): "
            f"{type(error).__name__}: {detail}") from error


def state_dict_of(checkpoint, source: str, config_key: str) -> dict:
    """The state dict in a loaded checkpoint: its ``model`` entry (LAVIS's layout) or itself."""
    state_dict = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(state_dict, dict) or not all(torch.is_tensor(v) for v in state_dict.values()):
        raise CheckpointError(f"{config_key}: '{source}' holds no state dict (a mapping of names to tensors, "
                              f"alone or under 'model')")
    return state_dict


def load_state_dict_file(source: str, config_key: str) -> dict:
    return state_dict_of(load_checkpoint_file(source, config_key), source, config_key)


class CheckpointMismatchError(CheckpointError):
    """A checkpoint that does not fit the model it is loaded into."""


def parameter_groups(names) -> str:
    """``frame_prompter (3), distiller (4)``: parameter names counted by their top-level module."""
    counts = {}
    for name in names:
        counts[name.split(".")[0]] = counts.get(name.split(".")[0], 0) + 1
    return ", ".join(f"{module} ({count})" for module, count in counts.items())


# Frozen backbones load from their own sources (vit_weights, t5_model), never from a model checkpoint.
OWN_SOURCES = ("visual_encoder.", "t5_model.")


def load_state_dict_into(model, state_dict: dict, source: str, config_key: str = "checkpoint", assign: bool = False):
    """``model.load_state_dict(state_dict, strict=False)``, with the official ViLA code's names
    (``fs.*``, ``dist_fc_bn.*``) renamed to ours first, which the log says."""
    official = official_names.official_prefixes_in(state_dict)
    if official:
        try:
            state_dict = official_names.with_our_names(state_dict)
        except ValueError as error:
            raise CheckpointError(f"{config_key}: '{source}': {error}") from None
        logging.info("%s: official ViLA names mapped to ours: %s", source,
                     ", ".join(f"{prefix}* -> {official_names.OFFICIAL_TO_OURS[prefix]}*" for prefix in official))
    return model.load_state_dict(state_dict, strict=False, assign=assign)


def load_into(model, source: str, config_key: str = "checkpoint", partial: bool = False, model_fills: tuple = ()):
    """Load a checkpoint ({"model": state_dict} or a bare state dict) into ``model``.

    Frozen backbone weights may be absent (checkpoints hold the trainable parts). Whatever else the
    checkpoint lacks is logged by module for a partial initialisation (the Frame-Prompter, distiller
    and teacher slots for an InstructBLIP ``pretrained`` file). A checkpoint that
    leaves trainable parameters uncovered is refused, naming them, unless the load is a partial
    initialisation: ``partial`` (``pretrained`` weights) or a checkpoint that says so itself
    (``tools.merge_weights`` writes ``"partial": <why>``). Parameters under the prefixes
    ``model_fills`` may be absent too: the model fills them itself (``sevila_baseline``'s localizer).
    """
    checkpoint = load_checkpoint_file(source, config_key)
    result = load_state_dict_into(model, state_dict_of(checkpoint, source, config_key), source, config_key)
    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    uncovered = sorted(name for name in trainable.intersection(result.missing_keys) if not name.startswith(model_fills))
    if uncovered and not (partial or checkpoint.get("partial")):
        raise CheckpointMismatchError(
            f"{config_key}: '{source}' does not cover {len(uncovered)} trainable parameters of "
            f"{type(model).__name__}: {parameter_groups(uncovered)}. Is it a checkpoint of another model "
            f"(a vila_uniform one for vila)? A stage-2 ViLA initialisation comes from tools.merge_weights.")
    not_loaded = [name for name in result.missing_keys if name in trainable or not name.startswith(OWN_SOURCES)]
    if not_loaded and (partial or checkpoint.get("partial")):
        logging.warning("%s: %s; not in it, so they keep their initialisation: %s", source,
                        checkpoint.get("partial") or "partial initialisation", parameter_groups(not_loaded))
    if result.unexpected_keys:
        logging.warning("%s: %d checkpoint tensors this model does not have, not used: %s",
                        source, len(result.unexpected_keys), parameter_groups(result.unexpected_keys))
    logging.info("loaded checkpoint %s", source)
    return result
