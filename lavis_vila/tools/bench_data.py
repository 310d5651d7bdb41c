"""Frames per second of the video data path (``lavis_vila.experiments.bench_data``).

    python -m lavis_vila.tools.bench_data tests/data/videos/flipping_a_pancake.mkv --repeats 7
"""
import argparse
import json

from lavis_vila.experiments.bench_data import data_path_fps


def main(argv=None):
    parser = argparse.ArgumentParser(description="Frames per second of the vila_video_eval processor against raw "
                                                 "decord, on the same frames.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each (at least 3)")
    parser.add_argument("--num-frames", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--out", metavar="JSON", help="write the result as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3")
    result = data_path_fps(args.video, args.repeats, args.num_frames, args.image_size)
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
