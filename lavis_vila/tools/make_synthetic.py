"""Generate the ``keyframe_qa`` synthetic benchmark.

    python -m lavis_vila.tools.make_synthetic --out data/keyframe_qa --seed 0 \\
        --num-train 1200 --num-val 300 --frames 8 --size 32
"""
import argparse

from lavis_vila.datasets.synthetic import GeneratorError, generate
from lavis_vila.datasets.synthetic_options import add_generator_arguments, check_clip_counts, generator_kwargs


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate the keyframe_qa synthetic benchmark.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", required=True, help="output directory: new, empty, or generated before")
    parser.add_argument("--force", action="store_true",
                        help="write into a folder holding other files too (only the generated files are replaced)")
    add_generator_arguments(parser)
    args = parser.parse_args(argv)
    check_clip_counts(parser, args)
    try:
        out = generate(args.out, seed=args.seed, **generator_kwargs(args), force=args.force)
    except GeneratorError as error:
        parser.exit(1, f"make_synthetic: {error}\n")
    print(f"keyframe_qa written to {out}")


if __name__ == "__main__":
    main()
