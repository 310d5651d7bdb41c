"""Where each registered model's default YAML lives (absolute, as LAVIS joins paths)."""
import os

MODEL_CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", "models")
MODEL_TYPES = ("flant5xl", "flant5xxl", "tiny")


def model_config_paths(arch: str, extra_types: tuple = ()) -> dict:
    """``{model_type: absolute path}`` for LAVIS's ``PRETRAINED_MODEL_CONFIG_DICT``: the common
    ``MODEL_TYPES`` and the arch's own ``extra_types``."""
    return {t: os.path.join(MODEL_CONFIG_DIR, arch, f"{t}.yaml") for t in MODEL_TYPES + tuple(extra_types)}
