"""Models registered with LAVIS: ``vila``, ``vila_uniform``, ``sevila_baseline``."""
from lavis.common.registry import registry
from omegaconf import OmegaConf

from lavis_vila.models.sevila_baseline import SeViLABaseline
from lavis_vila.models.vila import ViLA
from lavis_vila.models.vila_uniform import VilaUniform

__all__ = ["SeViLABaseline", "ViLA", "VilaUniform", "build_model"]


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
