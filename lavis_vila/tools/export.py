"""Write a training checkpoint as a saved-model folder: ``model.safetensors`` and ``config.yaml``.

    python -m lavis_vila.tools.export output/.../checkpoint_best.pth --out my_vila

The folder then loads as ``load_model_and_preprocess("vila", "my_vila", is_eval=True)`` or as
``model.finetuned: my_vila`` in an evaluation config (``lavis_vila.saved_model``). The processors
are the ones the run trained with (its first dataset's), else the model type's defaults.
"""
import argparse

from lavis_vila.checkpoints import CheckpointError, load_checkpoint_file
from lavis_vila.saved_model import export_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("checkpoint", help="a checkpoint written by training (checkpoint_best.pth, ...)")
    parser.add_argument("--out", required=True, help="the folder to write")
    args = parser.parse_args(argv)
    try:
        checkpoint = load_checkpoint_file(args.checkpoint, "checkpoint")
        folder = export_checkpoint(checkpoint, args.checkpoint, args.out)
    except (CheckpointError, FileNotFoundError) as error:
        parser.exit(1, f"export: {error}\n")
    print(f"wrote {folder}: {len(checkpoint['model'])} tensors in model.safetensors, and config.yaml")


if __name__ == "__main__":
    main()
