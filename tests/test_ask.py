import decord
import pytest

from conftest import CORRUPTED, PANCAKE
from lavis_vila.models import build_model
from lavis_vila.tools.ask import InputError, ask, check_inputs, read_frames

OPTIONS = ["a pancake", "a coin", "a card"]


@pytest.fixture(scope="module")
def model():
    return build_model("vila", "tiny").eval()


@pytest.mark.parametrize("video, question, options, message", [
    ("v.mp4", "", OPTIONS, r"^Type a question\.$"),
    ("v.mp4", "  ", OPTIONS, r"^Type a question\.$"),
    ("v.mp4", "what?", [], r"^Give 2 to 5 options \(got 0\)\.$"),
    ("v.mp4", "what?", ["a"], r"^Give 2 to 5 options \(got 1\)\.$"),
    ("v.mp4", "what?", list("abcdef"), r"^Give 2 to 5 options \(got 6\)\.$"),
    (None, "what?", OPTIONS, r"^Upload a video or pick an example\.$"),
    (None, "", [], r"^Upload a video or pick an example\. Type a question\. Give 2 to 5 options \(got 0\)\.$"),
])
def test_each_missing_or_invalid_input_has_its_own_message(video, question, options, message):
    with pytest.raises(InputError, match=message):
        check_inputs(video, question, options)


def test_blank_options_are_dropped_before_they_are_counted(model):
    with pytest.raises(InputError, match=r"\(got 1\)"):
        ask(model, str(PANCAKE), "what is flipped?", ["a pancake", "  ", ""])


def test_a_corrupt_video_is_an_input_error_naming_the_file(model, test_videos):
    with pytest.raises(InputError, match=r"^corrupted\.mp4: decoding frames \[.*\] failed"):
        ask(model, str(CORRUPTED), "what is flipped?", OPTIONS)


def test_ask_answers_with_an_option_k_frames_their_times_in_the_video_and_the_stage_latencies(model, test_videos):
    answer = ask(model, str(PANCAKE), " what is flipped? ", [" a pancake", "a coin", "a card "])
    assert answer.text == OPTIONS[answer.option]
    assert len(answer.frame_idx) == model.num_selected_frames == 4
    assert answer.frame_idx == sorted(answer.frame_idx) and 0 <= min(answer.frame_idx) and max(answer.frame_idx) < 16
    fps = decord.VideoReader(str(PANCAKE)).get_avg_fps()  # 30 fps, 310 frames
    assert answer.timestamps == [number / fps for number in answer.frame_numbers]
    assert [len(segment) for segment in answer.probabilities] == [4] * 4
    assert all(sum(segment) == pytest.approx(1.0) for segment in answer.probabilities)
    stages = ("ViT", "prompter", "Q-Former", "LLM")
    assert list(answer.latency_ms) == [*stages, "total"] and all(answer.latency_ms[name] > 0 for name in stages)
    assert sum(answer.latency_ms[name] for name in stages) < answer.latency_ms["total"]
    assert set(answer.to_json()) == {"answer", "option", "frame_idx", "frame_numbers", "timestamps", "probabilities",
                                     "latency_ms"}


def test_chosen_frames_are_read_at_the_videos_own_resolution(test_videos):
    frames = read_frames(str(PANCAKE), [0, 309])
    assert [frame.shape for frame in frames] == [(240, 426, 3)] * 2
