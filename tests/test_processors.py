import re
from pathlib import Path

import numpy as np
import pytest
import torch
from lavis.common.registry import registry

from lavis_vila.processors import VideoDecodeError, VideoEvalProcessor, VideoTrainProcessor, segment_frame_indices
from lavis_vila.processors.video import DecodedVideo


def test_eval_sampling_takes_the_middle_frame_of_each_equal_segment():
    assert segment_frame_indices(80, 8) == [5, 15, 25, 35, 45, 55, 65, 75]  # (lo+hi)//2 of [0, 10), [10, 20), ...
    assert segment_frame_indices(80, 8, rounding="centred") == [4, 14, 24, 34, 44, 54, 64, 74]


def test_official_rounding_takes_frame_lo_plus_hi_halved_in_a_17_frame_video():
    # linspace(0, 17, 5) = 0, 4.25, 8.5, 12.75, 17 -> segments [0, 4), [4, 8), [8, 12), [12, 17)
    assert segment_frame_indices(17, 4) == [2, 6, 10, 14]  # (0+4)//2, (4+8)//2, (8+12)//2, (12+17)//2
    assert segment_frame_indices(17, 4, rounding="centred") == [1, 5, 9, 14]  # (lo+hi-1)//2


@pytest.mark.parametrize("rounding, expected", [("official", [5, 15, 25]), ("centred", [4, 14, 25])])
def test_a_clip_end_becomes_int_end_fps_officially_and_its_ceiling_centred(test_videos, rounding, expected):
    # 1.01 s at 30 fps is frame 30.3: official clip [0, 30) -> thirds [0,10) [10,20) [20,30);
    # centred clip [0, 31) -> linspace(0, 31, 4) cut to [0,10) [10,20) [20,31).
    processor = VideoEvalProcessor(image_size=32, num_frames=3, frame_rounding=rounding)
    _, indices = processor(str(test_videos / "flipping_a_pancake.mkv"), start=0.0, end=1.01)
    assert indices == expected


def test_an_unknown_frame_rounding_is_an_error():
    with pytest.raises(ValueError, match="frame_rounding must be one of"):
        VideoEvalProcessor(frame_rounding="nearest")


def test_train_sampling_takes_one_frame_inside_each_segment():
    rng = np.random.default_rng(0)
    for _ in range(20):
        indices = segment_frame_indices(80, 8, random=True, rng=rng)
        assert [i // 10 for i in indices] == list(range(8))


def test_fewer_frames_than_requested_repeats_the_last_frame():
    assert segment_frame_indices(3, 8) == [0, 1, 2, 2, 2, 2, 2, 2]


def three_fps_processor(processor_class, rounding: str, path: str, num_frames: int = 32):
    """A processor whose video at ``path`` is 100 frames at 3 fps, frame i filled with the value i."""
    processor = processor_class(image_size=2, num_frames=num_frames, frame_rounding=rounding, cache_videos=True)
    frames = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1).expand(100, 2, 2, 3)
    processor.cached_videos[path] = DecodedVideo(frames, fps=3.0)
    return processor


def frames_per_segment(indices, num_segments: int = 4):
    """The distinct frames each of the K segments of the T candidates holds."""
    size = len(indices) // num_segments
    return [sorted(set(indices[k * size:(k + 1) * size])) for k in range(num_segments)]


def test_a_15_frame_window_t32_k4_gives_the_official_segments_36_39_39_43_43_46_47_50():
    # 12-17 s of a 3 fps video: frames [36, 51); the official linspace(36, 51, 33) spreads the repeats.
    processor = three_fps_processor(VideoEvalProcessor, "official", "vlep.mp4")
    uint8_frames, indices = processor.decode("vlep.mp4", start=12.0, end=17.0)
    assert frames_per_segment(indices) == [[36, 37, 38, 39], [39, 40, 41, 42, 43], [43, 44, 45, 46],
                                           [47, 48, 49, 50]]
    assert uint8_frames[:, 0, 0, 0].tolist() == indices  # the decoded frames are those frames


def test_a_short_window_centred_takes_each_frame_once_and_repeats_the_last():
    processor = three_fps_processor(VideoEvalProcessor, "centred", "vlep.mp4")
    _, indices = processor.decode("vlep.mp4", start=12.0, end=17.0)
    assert indices == list(range(36, 51)) + [50] * 17
    assert frames_per_segment(indices) == [list(range(36, 44)), list(range(44, 51)), [50], [50]]


def test_training_draws_from_the_official_segments_of_a_short_window():
    processor = three_fps_processor(VideoTrainProcessor, "official", "vlep.mp4")
    bounds = np.linspace(36, 51, 33).astype(int)  # the official segments [lo, hi), lo alone where lo == hi
    for _ in range(5):
        _, indices = processor.decode("vlep.mp4", start=12.0, end=17.0)
        assert all(lo <= i <= max(lo, hi - 1) for i, lo, hi in zip(indices, bounds[:-1], bounds[1:]))


def test_clip_window_restricts_sampling_to_start_end():
    indices = segment_frame_indices(300, 4, first=100, last=200)
    assert indices == [112, 137, 162, 187]


def test_processors_are_registered_under_their_names():
    assert registry.get_processor_class("vila_video_eval") is VideoEvalProcessor
    assert registry.get_processor_class("vila_video_train") is VideoTrainProcessor
    assert registry.get_processor_class("vila_question") is not None


def test_eval_processor_decodes_real_video_to_normalised_frames(test_videos):
    processor = VideoEvalProcessor(image_size=32, num_frames=8)
    frames, indices = processor(str(test_videos / "flipping_a_pancake.mkv"))
    assert frames.shape == (8, 3, 32, 32) and frames.dtype == torch.float32
    assert indices == segment_frame_indices(310, 8)
    # CLIP normalisation maps [0, 1] pixels to roughly [-1.8, 2.2].
    assert -1.9 < frames.min() < frames.max() < 2.2


def test_eval_processor_is_deterministic_and_train_processor_is_not(test_videos):
    path = str(test_videos / "flipping_a_pancake.mkv")
    eval_proc = VideoEvalProcessor(image_size=32, num_frames=8)
    assert torch.equal(eval_proc(path)[0], eval_proc(path)[0])
    train_proc = VideoTrainProcessor(image_size=32, num_frames=8)
    (a, ia), (b, ib) = train_proc(path), train_proc(path)
    assert a.shape == (8, 3, 32, 32)
    assert ia != ib or not torch.equal(a, b)


def test_cached_videos_give_the_same_frames_and_random_draws_and_are_decoded_once(test_videos, tmp_path):
    import shutil

    path = str(tmp_path / "pancake.mkv")
    shutil.copy(test_videos / "flipping_a_pancake.mkv", path)
    plain = VideoTrainProcessor(image_size=32, num_frames=8, min_scale=1.0)
    cached = VideoTrainProcessor(image_size=32, num_frames=8, min_scale=1.0, cache_videos=True)
    torch.manual_seed(0)
    expected = [plain(path) for _ in range(3)]
    torch.manual_seed(0)
    first = cached(path)
    Path(path).unlink()  # later epochs read the memory copy
    got = [first] + [cached(path) for _ in range(2)]
    for (frames, indices), (want_frames, want_indices) in zip(got, expected):
        assert indices == want_indices and torch.equal(frames, want_frames)
    assert len({tuple(indices) for _, indices in got}) > 1  # the random draws still differ per epoch
    assert list(cached.cached_videos) == [path] and plain.cached_videos is None


def test_a_cached_corrupt_video_is_still_a_decode_error_naming_the_file(test_videos):
    with pytest.raises(VideoDecodeError, match="corrupted.mp4"):
        VideoEvalProcessor(image_size=32, num_frames=4, cache_videos=True)(str(test_videos / "corrupted.mp4"))


def test_start_end_seconds_select_frames_inside_the_clip(test_videos):
    processor = VideoEvalProcessor(image_size=32, num_frames=4)
    _, indices = processor(str(test_videos / "flipping_a_pancake.mkv"), start=2.0, end=4.0)
    assert all(60 <= i < 120 for i in indices)  # 30 fps


def test_short_video_repeats_its_last_frame(test_videos):
    processor = VideoEvalProcessor(image_size=32, num_frames=8)
    frames, indices = processor(str(test_videos / "rotated_90.mov"))
    assert indices == [0, 1, 2, 2, 2, 2, 2, 2]
    assert torch.equal(frames[2], frames[7])


def test_corrupted_video_raises_error_naming_the_file(test_videos):
    path = str(test_videos / "corrupted.mp4")
    with pytest.raises(VideoDecodeError, match="corrupted.mp4"):
        VideoEvalProcessor(image_size=32, num_frames=8)(path)


def test_missing_video_raises_error_naming_the_file(tmp_path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(VideoDecodeError, match=r"nope\.mp4: video file does not exist"):
        VideoEvalProcessor()(str(path))


def test_question_processor_cleans_whitespace_and_keeps_case_and_punctuation():
    processor = registry.get_processor_class("vila_question").from_config(None)
    assert processor("  What  is\nit?  Option A: x ") == "What is it? Option A: x"


@pytest.mark.parametrize("start, end, message", [
    (5.0, 2.0, r"invalid clip window start=5.0, end=2.0"),
    (-1.0, 2.0, r"invalid clip window start=-1.0"),
    (1000.0, None, r"the clip starts at 1000.00 s, past the video's end"),
])
def test_a_bad_clip_window_is_an_error_naming_the_file(test_videos, start, end, message):
    path = str(test_videos / "flipping_a_pancake.mkv")
    with pytest.raises(VideoDecodeError, match=rf"^{path}: {message}"):
        VideoEvalProcessor(image_size=32, num_frames=4)(path, start, end)


@pytest.mark.parametrize("processor_class", [VideoEvalProcessor, VideoTrainProcessor])
@pytest.mark.parametrize("rounding", ["official", "centred"])
def test_a_zero_length_window_decodes_the_frame_at_that_time_t_times(test_videos, processor_class, rounding):
    processor = processor_class(image_size=32, num_frames=4, frame_rounding=rounding)
    path = str(test_videos / "flipping_a_pancake.mkv")
    assert processor(path, 1.7, 1.7)[1] == [51] * 4  # How2QA's '1.70-1.70': 1.7 s at 30 fps
    assert processor(path, 0, 0)[1] == [0] * 4  # TVQA's '0-0'


@pytest.mark.parametrize("start, end", [(float("nan"), float("nan")), ("NaN", "NaN")])
def test_a_nan_window_samples_the_whole_clip(test_videos, start, end):
    processor = VideoEvalProcessor(image_size=32, num_frames=4)
    path = str(test_videos / "flipping_a_pancake.mkv")
    assert processor(path, start, end)[1] == processor(path)[1]


@pytest.mark.parametrize("start, end", [("NaN", 4.0), (1.0, float("nan"))])
def test_half_a_nan_window_is_a_decode_error_naming_the_file_and_window(test_videos, start, end):
    processor = VideoEvalProcessor(image_size=32, num_frames=4)
    path = str(test_videos / "flipping_a_pancake.mkv")
    with pytest.raises(VideoDecodeError, match=f"{re.escape(path)}: invalid clip window start=.*only a NaN start and end together"):
        processor(path, start, end)


def test_a_start_without_an_end_samples_from_start_to_the_video_end(test_videos):
    path = str(test_videos / "flipping_a_pancake.mkv")
    processor = VideoEvalProcessor(image_size=32, num_frames=4)
    _, whole = processor(path)
    _, from_one_second = processor(path, 1.0, None)
    _, until_one_second = processor(path, None, 1.0)
    assert min(from_one_second) > min(whole) and max(from_one_second) >= max(whole) - 1
    assert max(until_one_second) < max(from_one_second)
