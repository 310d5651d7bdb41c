"""Frames per second of the video data path: the ``vila_video_eval`` processor against raw decord.

    python -m lavis_vila.tools.bench_data tests/data/videos/flipping_a_pancake.mkv --repeats 7

Both read the same frame indices (``--num-frames`` segments); the ratio is processor / decord.
"""
import argparse
import json
import statistics
import time


def data_path_fps(video: str, repeats: int, num_frames: int = 32, image_size: int = 224) -> dict:
    """Frames per second of the ``vila_video_eval`` processor and of raw decord on the same frames."""
    import decord

    from lavis_vila.processors import VideoEvalProcessor

    processor = VideoEvalProcessor(image_size=image_size, num_frames=num_frames)
    _, indices = processor(video)

    def raw():
        decord.VideoReader(video, num_threads=1).get_batch(indices)

    result = {}
    for name, fn in (("vila_video_eval", lambda: processor(video)), ("decord_get_batch", raw)):
        fn()
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - start)
        result[name] = num_frames / statistics.median(seconds)
    result["ratio"] = result["vila_video_eval"] / result["decord_get_batch"]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each (at least 3)")
    parser.add_argument("--num-frames", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--json", metavar="OUT", help="write the result as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3")
    result = data_path_fps(args.video, args.repeats, args.num_frames, args.image_size)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
