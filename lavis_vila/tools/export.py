"""Write a training checkpoint as a saved-model folder: ``model.safetensors`` and ``config.yaml``.

    python -m lavis_vila.tools.export output/.../checkpoint_best.pth --out my_vila

The folder then loads as ``load_model_and_preprocess("vila", "my_vila", is_eval=True)`` or as
``model.finetuned: my_vila`` in an evaluation config (``lavis_vila.saved_model``). The processors
are the ones the run trained with (its first dataset's), else the model type's defaults.
"""
import argparse

from omegaconf import OmegaConf

from lavis_vila.checkpoints import CheckpointError, load_checkpoint_file
from lavis_vila.saved_model import export_checkpoint


def default_preprocess(checkpoint: dict):
    """The processors of the checkpoint's model type (its registered YAML), if it names one."""
    from lavis.common.registry import registry

    import lavis_vila  # noqa: F401  registers the models

    model = (checkpoint.get("config") or {}).get("model") or {}
    model_cls = registry.get_model_class(model.get("arch"))
    if model_cls is None or model.get("model_type") not in model_cls.PRETRAINED_MODEL_CONFIG_DICT:
        return None
    return OmegaConf.load(model_cls.default_config_path(model["model_type"])).get("preprocess")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("checkpoint", help="a checkpoint written by training (checkpoint_best.pth, ...)")
    parser.add_argument("--out", required=True, help="the folder to write")
    args = parser.parse_args(argv)
    try:
        checkpoint = load_checkpoint_file(args.checkpoint, "checkpoint")
        folder = export_checkpoint(checkpoint, args.checkpoint, args.out, default_preprocess(checkpoint))
    except (CheckpointError, FileNotFoundError) as error:
        parser.exit(1, f"export: {error}\n")
    print(f"wrote {folder}: {len(checkpoint['model'])} tensors in model.safetensors, and config.yaml")


if __name__ == "__main__":
    main()
