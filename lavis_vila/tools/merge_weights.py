"""Build the stage-2 ViLA init from the two stage-1 ``vila_uniform`` checkpoints.

    python -m lavis_vila.tools.merge_weights --teacher T_CKPT --student S_CKPT --out MERGED

The student init (K frames) fills the student slots (``Qformer``, ``query_tokens``, ``t5_proj``,
``ln_vision``) and the teacher (T frames) the teacher slots (``Qformer_T``, ``query_tokens_T``,
``t5_proj_T``); see ``lavis_vila.stage_weights``. Then set ``model.load_finetuned: True`` and
``model.finetuned: MERGED`` in the stage-2 config.

When both checkpoints record their training config (ours do), the teacher must have been trained
on more frames than the student; swapped roles are refused.
"""
import argparse

from lavis_vila.checkpoints import CheckpointError
from lavis_vila.stage_weights import MergeError, merge_files


def main(argv=None):
    parser = argparse.ArgumentParser(description="Merge stage-1 teacher and student checkpoints for ViLA.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--teacher", required=True, help="T-frame vila_uniform checkpoint")
    parser.add_argument("--student", required=True, help="K-frame vila_uniform checkpoint")
    parser.add_argument("--out", required=True, help="merged checkpoint to write")
    args = parser.parse_args(argv)
    try:
        merged = merge_files(args.teacher, args.student, args.out)
    except (MergeError, CheckpointError) as error:
        parser.exit(1, f"merge_weights: {error}\n")
    print(f"wrote {args.out}: {len(merged)} tensors (student and teacher slots)")


if __name__ == "__main__":
    main()
