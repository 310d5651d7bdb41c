"""Join a trained answerer and a self-refined localizer into one ``sevila_baseline`` checkpoint.

    python -m lavis_vila.tools.sevila_weights --answerer A_CKPT --localizer L_CKPT --out SEVILA

Self-refinement (``train_localizer: True``) freezes the answerer, so its checkpoints hold the
localizer only (``Qformer_loc``, ``query_tokens_loc``, ``t5_proj_loc`` and, in SeViLA's
architecture, ``ln_vision_loc``). The answerer slots (``Qformer``, ``query_tokens``, ``t5_proj``,
``ln_vision``) come from ``--answerer``: the checkpoint the self-refinement started from. The
result loads as ``model.finetuned`` of ``sevila_baseline``, as SeViLA's released checkpoint does.
"""
import argparse
import os

import torch

from lavis_vila.checkpoints import CheckpointError, load_state_dict_file

LOCALIZER = ("Qformer_loc.", "query_tokens_loc", "t5_proj_loc.", "ln_vision_loc.")
ANSWERER = ("Qformer.", "query_tokens", "t5_proj.", "ln_vision.")


def slots(state_dict: dict, prefixes: tuple, exclude: tuple) -> dict:
    """The entries under ``prefixes`` and not under ``exclude`` ("query_tokens" vs "query_tokens_loc")."""
    return {k: v for k, v in state_dict.items() if k.startswith(prefixes) and not k.startswith(exclude)}


def join(answerer: dict, localizer: dict, answerer_name: str = "answerer", localizer_name: str = "localizer") -> dict:
    answerer_part = slots(answerer, ANSWERER, LOCALIZER)
    localizer_part = slots(localizer, LOCALIZER, ())
    for part, prefixes, name in ((answerer_part, ANSWERER[:3], answerer_name), (localizer_part, LOCALIZER[:3], localizer_name)):
        absent = [prefix for prefix in prefixes if not any(k.startswith(prefix) for k in part)]
        if absent:
            raise CheckpointError(f"{name} has no {', '.join(p + '*' for p in absent)} weights")
    return {**answerer_part, **localizer_part}


def join_files(answerer_path: str, localizer_path: str, out: str) -> dict:
    joined = join(load_state_dict_file(answerer_path, "--answerer"), load_state_dict_file(localizer_path, "--localizer"),
                  answerer_path, localizer_path)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    torch.save({"model": joined, "joined_from": {"answerer": answerer_path, "localizer": localizer_path}}, out)
    return joined


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
