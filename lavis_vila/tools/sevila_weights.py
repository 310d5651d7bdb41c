"""Join a trained answerer and a self-refined localizer into one ``sevila_baseline`` checkpoint.

    python -m lavis_vila.tools.sevila_weights --answerer A_CKPT --localizer L_CKPT --out SEVILA

Self-refinement (``train_localizer: True``) freezes the answerer, so its checkpoints hold the
localizer only (``Qformer_loc``, ``query_tokens_loc``, ``t5_proj_loc`` and, in SeViLA's
architecture, ``ln_vision_loc``). The answerer slots (``Qformer``, ``query_tokens``, ``t5_proj``,
``ln_vision``) come from ``--answerer``: the checkpoint the self-refinement started from. The
result loads as ``model.finetuned`` of ``sevila_baseline``, as SeViLA's released checkpoint does
(see ``lavis_vila.stage_weights``).
"""
import argparse

from lavis_vila.checkpoints import CheckpointError
from lavis_vila.stage_weights import join_files


def main(argv=None):
    parser = argparse.ArgumentParser(description="Join answerer and self-refined localizer weights for sevila_baseline.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--answerer", required=True, help="checkpoint holding the answerer (the refinement's start)")
    parser.add_argument("--localizer", required=True, help="a checkpoint of the self-refinement run")
    parser.add_argument("--out", required=True, help="sevila_baseline checkpoint to write")
    args = parser.parse_args(argv)
    try:
        joined = join_files(args.answerer, args.localizer, args.out)
    except CheckpointError as error:
        parser.exit(1, f"sevila_weights: {error}\n")
    print(f"wrote {args.out}: {len(joined)} tensors (answerer and localizer)")


if __name__ == "__main__":
    main()
