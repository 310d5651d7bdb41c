import decord
import pytest
import torch

from conftest import CORRUPTED, PANCAKE
from lavis_vila.inference import InputError, answer, check_inputs, load, read_frames

OPTIONS = ["a pancake", "a coin", "a card"]


@pytest.fixture(scope="module")
def model():
    return load("vila", "tiny")


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
        answer(model, str(PANCAKE), "what is flipped?", ["a pancake", "  ", ""])


def test_a_corrupt_video_is_an_input_error_naming_the_file(model, test_videos):
    with pytest.raises(InputError, match=r"^corrupted\.mp4: decoding frames \[.*\] failed"):
        answer(model, str(CORRUPTED), "what is flipped?", OPTIONS)


def test_answer_gives_an_option_k_frames_their_times_in_the_video_and_the_stage_latencies(model, test_videos):
    result = answer(model, str(PANCAKE), " what is flipped? ", [" a pancake", "a coin", "a card "])
    assert result.text == OPTIONS[result.option] and result.question == "what is flipped?"
    assert result.options == OPTIONS  # blanks around each option dropped
    assert len(result.frame_idx) == model.num_selected_frames == 4
    assert result.frame_idx == sorted(result.frame_idx) and 0 <= min(result.frame_idx) and max(result.frame_idx) < 16
    fps = decord.VideoReader(str(PANCAKE)).get_avg_fps()  # 30 fps, 310 frames
    assert result.timestamps == [number / fps for number in result.frame_numbers]
    assert [len(segment) for segment in result.probabilities] == [4] * 4
    assert all(sum(segment) == pytest.approx(1.0) for segment in result.probabilities)
    stages = ("ViT", "prompter", "Q-Former", "LLM")
    assert list(result.latency_ms) == [*stages, "total"] and all(result.latency_ms[name] > 0 for name in stages)
    assert sum(result.latency_ms[name] for name in stages) < result.latency_ms["total"]
    assert set(result.to_json()) == {"answer", "option", "frame_idx", "frame_numbers", "timestamps", "probabilities",
                                     "latency_ms"}


def test_chosen_frames_are_read_at_the_videos_own_resolution(test_videos):
    frames = read_frames(str(PANCAKE), [0, 309])
    assert [frame.shape for frame in frames] == [(240, 426, 3)] * 2


def test_a_model_without_a_prompter_answers_from_the_frames_it_is_given(test_videos):
    uniform = load("vila_uniform", "tiny")
    with pytest.raises(ValueError, match="VilaUniform selects no frames: pass num_frames"):
        answer(uniform, str(PANCAKE), "what is flipped?", OPTIONS)
    result = answer(uniform, str(PANCAKE), "what is flipped?", OPTIONS, num_frames=4)
    assert result.frame_idx == [0, 1, 2, 3] and result.probabilities is None and result.pixels.shape[0] == 4


def test_load_refuses_a_checkpoint_of_another_model(tmp_path):
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    from lavis_vila.checkpoints import CheckpointError
    from lavis_vila.models import build_model

    model = build_model("vila_uniform", "tiny")
    config = OmegaConf.load(registry.get_model_class("vila_uniform").default_config_path("tiny"))
    path = tmp_path / "uniform.pth"
    torch.save({"model": model.state_dict(), "config": {"model": OmegaConf.to_container(config.model)}}, path)
    with pytest.raises(CheckpointError, match="holds a VilaUniform, not a vila model"):
        load("vila", checkpoint=str(path))
