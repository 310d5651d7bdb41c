"""Building registered models: from a model type's YAML, or from what a training checkpoint records."""
from lavis.common.registry import registry
from omegaconf import OmegaConf

from lavis_vila.checkpoints import CheckpointError, load_checkpoint_file


def build_model(arch: str, model_type: str, empty: bool = False, **overrides):
    """Build a registered model from its default YAML, with optional config overrides.

    ``empty=True`` builds the real architecture with every parameter on the meta device:
    nothing is downloaded, loaded or allocated (architecture checks, FLOP counts).
    """
    model_cls = registry.get_model_class(arch)
    if model_cls is None:
        raise KeyError(f"Unknown model '{arch}'. Registered: {sorted(registry.list_models())}")
    if model_type not in model_cls.PRETRAINED_MODEL_CONFIG_DICT:
        raise KeyError(
            f"Unknown model_type '{model_type}' for '{arch}'. "
            f"Available: {sorted(model_cls.PRETRAINED_MODEL_CONFIG_DICT)}"
        )
    cfg = OmegaConf.load(model_cls.default_config_path(model_type)).model
    cfg = OmegaConf.merge(cfg, overrides)
    return model_cls.from_config(cfg, empty=empty)


def build_model_from_checkpoint(path: str, config_key: str = "checkpoint"):
    """The model a training checkpoint was trained as (its recorded ``config.model``), with its weights."""
    checkpoint = load_checkpoint_file(path, config_key, mmap=True)  # the config only; from_config loads the weights
    model_cfg = (checkpoint.get("config") or {}).get("model") if isinstance(checkpoint, dict) else None
    if not model_cfg:
        raise CheckpointError(f"{config_key}: '{path}' records no model config (only checkpoints written by "
                              f"training do); build the model with build_model and load it as model.finetuned")
    cfg = OmegaConf.merge(model_cfg, {"load_finetuned": True, "finetuned": str(path)})
    return registry.get_model_class(cfg.arch).from_config(cfg)
