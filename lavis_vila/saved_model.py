"""Saved-model folders: weights as safetensors with the config beside them, as ``save_pretrained`` writes.

    FOLDER/model.safetensors   the model's own weights (what a training checkpoint holds: the
                               trainable parts and buffers; frozen backbones load from their sources)
    FOLDER/config.yaml         ``model:`` (the config the weights were trained with) and
                               ``preprocess:`` (the processors to feed it), as LAVIS's model YAMLs

A folder loads wherever a checkpoint does (``model.finetuned: FOLDER``, ``load_into``) and as a
model type of its own: ``load_model_and_preprocess("vila", FOLDER)``. Nothing in it is a pickle.
"""
import json
import os

from omegaconf import OmegaConf
from safetensors.torch import save_file

from lavis_vila.atomic_files import save_with
from lavis_vila.checkpoints import SAFETENSORS_WEIGHTS, CheckpointError

CONFIG_NAME = "config.yaml"


def is_saved_model(path) -> bool:
    return isinstance(path, (str, os.PathLike)) and os.path.isfile(os.path.join(path, CONFIG_NAME)) \
        and os.path.isfile(os.path.join(path, SAFETENSORS_WEIGHTS))


def save(folder: str, state_dict: dict, model_config, preprocess_config, metadata: dict = None) -> str:
    """Write ``state_dict`` and the configs into ``folder``; each file appears whole or not at all."""
    os.makedirs(folder, exist_ok=True)
    tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in state_dict.items()}
    text_metadata = {"format": "pt", **{key: json.dumps(value) for key, value in (metadata or {}).items()}}
    save_with(lambda tmp: save_file(tensors, tmp, metadata=text_metadata), os.path.join(folder, SAFETENSORS_WEIGHTS))
    config = OmegaConf.create({"model": OmegaConf.to_container(OmegaConf.create(model_config), resolve=True),
                               "preprocess": OmegaConf.to_container(OmegaConf.create(preprocess_config), resolve=True)})
    config.model.load_finetuned, config.model.finetuned = False, None  # the weights are this folder's (model_config_of)
    save_with(lambda tmp: OmegaConf.save(config, tmp), os.path.join(folder, CONFIG_NAME))
    return folder


def config_path(folder: str) -> str:
    return os.path.join(folder, CONFIG_NAME)


def model_config_of(folder: str):
    """The folder's model config, set to load the folder's own weights."""
    if not is_saved_model(folder):
        raise CheckpointError(f"'{folder}' is not a saved-model folder (it needs {CONFIG_NAME} and {SAFETENSORS_WEIGHTS})")
    config = OmegaConf.load(config_path(folder)).model
    return OmegaConf.merge(config, {"load_finetuned": True, "finetuned": os.path.abspath(folder)})


def preprocess_of(run_config: dict):
    """The processors a training run fed its model: its first dataset's ``vis_processor`` and
    ``text_processor``; None when the run config records no dataset."""
    for dataset in (run_config.get("datasets") or {}).values():
        if dataset.get("vis_processor") and dataset.get("text_processor"):
            return {"vis_processor": dataset["vis_processor"], "text_processor": dataset["text_processor"]}
    return None


def default_preprocess(model_config: dict):
    """The processors of the model type's registered YAML; None when the config names none."""
    from lavis.common.registry import registry  # importing LAVIS registers our models

    model_cls = registry.get_model_class(model_config.get("arch"))
    if model_cls is None or model_config.get("model_type") not in model_cls.PRETRAINED_MODEL_CONFIG_DICT:
        return None
    return OmegaConf.load(model_cls.default_config_path(model_config["model_type"])).get("preprocess")


def export_checkpoint(checkpoint: dict, source: str, folder: str) -> str:
    """A training checkpoint (its ``model`` weights and recorded ``config``) as a saved-model folder,
    with the run's processors (its first dataset's), else the model type's defaults."""
    run_config = checkpoint.get("config") or {}
    if not run_config.get("model"):
        raise CheckpointError(f"'{source}' records no model config (training checkpoints do); it cannot be saved as a "
                              f"folder that builds its own model")
    preprocess = preprocess_of(run_config) or default_preprocess(run_config["model"])
    if preprocess is None:
        raise CheckpointError(f"'{source}' records no dataset processors and its model type has no defaults")
    metadata = {key: checkpoint[key] for key in ("epoch", "partial") if checkpoint.get(key) is not None}
    return save(folder, checkpoint["model"], run_config["model"], preprocess, {**metadata, "exported_from": source})
