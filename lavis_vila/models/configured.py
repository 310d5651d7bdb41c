"""A LAVIS model built from its config node, a saved-model folder or a checkpoint, safely.

``ConfiguredModel`` is LAVIS's ``BaseModel`` with: configs whose every key is checked against
the constructors (``config_check``), checkpoints loaded by ``checkpoints.load_into`` (which
refuses what does not fit), and saved-model folders (``lavis_vila.saved_model``) accepted
wherever LAVIS takes a model type.
"""
import logging

from lavis.common.registry import registry
from lavis.models.base_model import BaseModel

from lavis_vila import saved_model
from lavis_vila.checkpoints import CheckpointError, load_into
from lavis_vila.models.compiled import compile_inference
from lavis_vila.config_check import check_model_section, constructor_keys


class ConfiguredModel(BaseModel):
    def load_checkpoint(self, url_or_filename: str, config_key: str = "checkpoint", partial: bool = False):
        """Load a LAVIS-style checkpoint safely; see ``checkpoints.load_into`` for what is refused."""
        return load_into(self, url_or_filename, config_key, partial)

    def load_checkpoint_from_config(self, cfg, **kwargs):
        """LAVIS's keys: ``finetuned`` when ``load_finetuned``, else ``pretrained``; null = random."""
        if cfg.get("load_finetuned", False):
            if not cfg.get("finetuned"):
                raise ValueError("model.load_finetuned is True but model.finetuned is not set")
            self.load_checkpoint(cfg.finetuned, "model.finetuned")
            return
        if cfg.get("finetuned"):
            raise ValueError(f"model.finetuned is set ('{cfg.finetuned}') but model.load_finetuned is False, so it "
                             f"would be ignored: set model.load_finetuned: True to load it, or model.finetuned: null")
        if cfg.get("pretrained"):
            self.load_checkpoint(cfg.pretrained, "model.pretrained", partial=True)
        else:
            logging.info("no pretrained checkpoint configured: trainable parts keep their random init")

    @classmethod
    def default_config_path(cls, model_type):
        """A model type's YAML, or a saved-model folder's ``config.yaml`` (``lavis_vila.saved_model``)."""
        if saved_model.is_saved_model(model_type):
            return saved_model.config_path(model_type)
        return super().default_config_path(model_type)

    @classmethod
    def from_pretrained(cls, model_type):
        """LAVIS's ``from_pretrained``; a saved-model folder as ``model_type`` loads with its own weights."""
        if not saved_model.is_saved_model(model_type):
            return super().from_pretrained(model_type)
        cfg = saved_model.model_config_of(model_type)
        saved_cls = registry.get_model_class(cfg.get("arch"))
        if saved_cls is not cls:
            raise CheckpointError(f"'{model_type}' holds a saved '{cfg.get('arch')}' model, not a {cls.__name__}: load "
                                  f"it as load_model_and_preprocess('{cfg.get('arch')}', '{model_type}')")
        return cls.from_config(cfg)

    @classmethod
    def from_config(cls, cfg, empty: bool = False):
        check_model_section(cls, cfg, f"{cfg.get('arch', cls.__name__)} model config")
        model = cls(**cls.config_kwargs(cfg), empty=empty)
        if not empty:
            model.load_checkpoint_from_config(cfg)
        return compile_inference(model, model.inference_compile)

    @classmethod
    def config_kwargs(cls, cfg) -> dict:
        """The constructor arguments present in a model config node (every key is checked first)."""
        return {key: cfg[key] for key in constructor_keys(cls) if key in cfg}
