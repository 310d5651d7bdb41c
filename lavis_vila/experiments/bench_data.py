"""Frames per second of the video data path: the ``vila_video_eval`` processor against raw decord.

Both read the same frame indices (``num_frames`` segments); the ratio is processor / decord.
"""
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
