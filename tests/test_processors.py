import numpy as np
import pytest
import torch
from lavis.common.registry import registry

from lavis_vila.processors import VideoDecodeError, VideoEvalProcessor, VideoTrainProcessor, segment_frame_indices


def test_eval_sampling_takes_the_middle_frame_of_each_equal_segment():
    assert segment_frame_indices(80, 8) == [4, 14, 24, 34, 44, 54, 64, 74]


def test_train_sampling_takes_one_frame_inside_each_segment():
    rng = np.random.default_rng(0)
    for _ in range(20):
        indices = segment_frame_indices(80, 8, random=True, rng=rng)
        assert [i // 10 for i in indices] == list(range(8))


def test_fewer_frames_than_requested_repeats_the_last_frame():
    assert segment_frame_indices(3, 8) == [0, 1, 2, 2, 2, 2, 2, 2]


def test_clip_window_restricts_sampling_to_start_end():
    indices = segment_frame_indices(300, 4, first=100, last=200)
    assert indices == [112, 137, 162, 187]


def test_processors_are_registered_under_their_names():
    assert registry.get_processor_class("vila_video_eval") is VideoEvalProcessor
    assert registry.get_processor_class("vila_video_train") is VideoTrainProcessor
    assert registry.get_processor_class("vila_question") is not None


def test_eval_processor_decodes_real_video_to_normalised_frames(shared_videos):
    processor = VideoEvalProcessor(image_size=32, num_frames=8)
    frames, indices = processor(str(shared_videos / "flipping_a_pancake.mkv"))
    assert frames.shape == (8, 3, 32, 32) and frames.dtype == torch.float32
    assert indices == segment_frame_indices(310, 8)
    # CLIP normalisation maps [0, 1] pixels to roughly [-1.8, 2.2].
    assert -1.9 < frames.min() < frames.max() < 2.2


def test_eval_processor_is_deterministic_and_train_processor_is_not(shared_videos):
    path = str(shared_videos / "flipping_a_pancake.mkv")
    eval_proc = VideoEvalProcessor(image_size=32, num_frames=8)
    assert torch.equal(eval_proc(path)[0], eval_proc(path)[0])
    train_proc = VideoTrainProcessor(image_size=32, num_frames=8)
    (a, ia), (b, ib) = train_proc(path), train_proc(path)
    assert a.shape == (8, 3, 32, 32)
    assert ia != ib or not torch.equal(a, b)


def test_start_end_seconds_select_frames_inside_the_clip(shared_videos):
    processor = VideoEvalProcessor(image_size=32, num_frames=4)
    _, indices = processor(str(shared_videos / "flipping_a_pancake.mkv"), start=2.0, end=4.0)
    assert all(60 <= i < 120 for i in indices)  # 30 fps


def test_short_video_repeats_its_last_frame(shared_videos):
    processor = VideoEvalProcessor(image_size=32, num_frames=8)
    frames, indices = processor(str(shared_videos / "rotated_90.mov"))
    assert indices == [0, 1, 2, 2, 2, 2, 2, 2]
    assert torch.equal(frames[2], frames[7])


def test_corrupted_video_raises_error_naming_the_file(shared_videos):
    path = str(shared_videos / "corrupted.mp4")
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
def test_a_bad_clip_window_is_an_error_naming_the_file(shared_videos, start, end, message):
    path = str(shared_videos / "flipping_a_pancake.mkv")
    with pytest.raises(VideoDecodeError, match=rf"^{path}: {message}"):
        VideoEvalProcessor(image_size=32, num_frames=4)(path, start, end)


def test_a_start_without_an_end_samples_from_start_to_the_video_end(shared_videos):
    path = str(shared_videos / "flipping_a_pancake.mkv")
    processor = VideoEvalProcessor(image_size=32, num_frames=4)
    _, whole = processor(path)
    _, from_one_second = processor(path, 1.0, None)
    _, until_one_second = processor(path, None, 1.0)
    assert min(from_one_second) > min(whole) and max(from_one_second) >= max(whole) - 1
    assert max(until_one_second) < max(from_one_second)
