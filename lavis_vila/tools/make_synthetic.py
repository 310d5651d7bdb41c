"""Generate the ``keyframe_qa`` synthetic benchmark.

    python -m lavis_vila.tools.make_synthetic --out data/keyframe_qa --seed 0 \\
        --num-train 1200 --num-val 300 --frames 8 --size 32
"""
import argparse

from lavis_vila.datasets.synthetic import GeneratorError, generate


def add_generator_arguments(parser: argparse.ArgumentParser, seed: bool = True) -> None:
    if seed:
        parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-train", type=int, default=1200)
    parser.add_argument("--num-val", type=int, default=300)
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (T)")
    parser.add_argument("--size", type=int, default=32, help="frame width and height in pixels")
    parser.add_argument("--event-frames", type=int, default=2, help="frames the answer is visible in")
    parser.add_argument("--fps", type=float, default=8.0)
    parser.add_argument("--shuffle-options", action="store_true", help="shuffle the option order per question")
    parser.add_argument("--events", type=int, default=1, choices=(1, 2),
                        help="events per clip; 2: the two-event variant, both in one segment, one asked about")
    parser.add_argument("--segments", type=int, default=2, help="with --events 2: K, the segments of the T -> K split")


def generator_kwargs(args: argparse.Namespace, seed: int = None) -> dict:
    return dict(seed=args.seed if seed is None else seed, num_train=args.num_train, num_val=args.num_val, frames=args.frames,
                size=args.size, event_frames=args.event_frames, fps=args.fps,
                shuffle_options=args.shuffle_options, events=args.events, segments=args.segments)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate the keyframe_qa synthetic benchmark.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", required=True, help="output directory: new, empty, or generated before")
    parser.add_argument("--force", action="store_true",
                        help="write into a folder holding other files too (only the generated files are replaced)")
    add_generator_arguments(parser)
    args = parser.parse_args(argv)
    try:
        out = generate(args.out, **generator_kwargs(args), force=args.force)
    except GeneratorError as error:
        parser.exit(1, f"make_synthetic: {error}\n")
    print(f"keyframe_qa written to {out}")


if __name__ == "__main__":
    main()
