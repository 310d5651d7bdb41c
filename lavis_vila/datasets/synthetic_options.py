"""The keyframe_qa generator's command-line options, shared by ``tools.make_synthetic`` and ``tools.demo``."""
import argparse


def add_generator_arguments(parser: argparse.ArgumentParser, seed: bool = True) -> None:
    if seed:
        parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-train", type=clip_count, default=1200, help="training clips (0: none, for evaluation only)")
    parser.add_argument("--num-val", type=clip_count, default=300, help="validation clips")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (T)")
    parser.add_argument("--size", type=int, default=32, help="frame width and height in pixels")
    parser.add_argument("--event-frames", type=int, default=2, help="frames the answer is visible in")
    parser.add_argument("--fps", type=float, default=8.0)
    parser.add_argument("--shuffle-options", action="store_true", help="shuffle the option order per question")
    parser.add_argument("--events", type=int, default=1, choices=(1, 2),
                        help="events per clip; 2: the two-event variant, both in one segment, one asked about")
    parser.add_argument("--segments", type=int, default=2, help="with --events 2: K, the segments of the T -> K split")


def clip_count(text: str) -> int:
    count = int(text)
    if count < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {count}")
    return count


def check_clip_counts(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A usage error (exit 2) for a benchmark with no clip at all."""
    if args.num_train == 0 and args.num_val == 0:
        parser.error("--num-train and --num-val are both 0: nothing to generate")


def generator_kwargs(args: argparse.Namespace) -> dict:
    """``generate``'s arguments from the options above, but the seed."""
    return dict(num_train=args.num_train, num_val=args.num_val, frames=args.frames, size=args.size,
                event_frames=args.event_frames, fps=args.fps, shuffle_options=args.shuffle_options,
                events=args.events, segments=args.segments)
