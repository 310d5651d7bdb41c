"""The web app's bounds on a request (``lavis_vila.tools.app_limits``), without a server."""
import re

import pytest

from conftest import PANCAKE, REPO_ROOT, write_solid_video
from lavis_vila.inference import InputError
from lavis_vila.models.backbones import build_t5_tokenizer
from lavis_vila.tools.app_limits import RequestLimits, check_request, check_video

LIMITS = RequestLimits()


class CountingTokenizer:
    """The tiny T5 tokenizer, counting the characters it was given."""

    def __init__(self):
        self.tokenizer, self.characters = build_t5_tokenizer("tiny"), 0

    def __call__(self, text):
        self.characters += len(text)
        return self.tokenizer(text)


@pytest.fixture(scope="module")
def tokenizer():
    return build_t5_tokenizer("tiny")


def test_a_question_and_options_within_every_limit_pass(tokenizer):
    check_request(tokenizer, "what colour is the square?", ["red", "green", "blue"], LIMITS)


def test_a_100000_character_question_is_refused_by_its_characters_without_being_tokenised():
    tokenizer = CountingTokenizer()
    with pytest.raises(InputError, match=r"^The question has 100,000 characters; at most 1,000\.$"):
        check_request(tokenizer, "x" * 100_000, ["a", "b"], LIMITS)
    assert tokenizer.characters == 0


def test_every_option_over_its_limit_is_named_in_one_message(tokenizer):
    with pytest.raises(InputError, match=r"^Option 1 has 20,000 characters; at most 500\. Option 3 has 501"):
        check_request(tokenizer, "q", ["y" * 20_000, "b", "z" * 501], LIMITS)


def test_50_options_are_refused_with_inferences_words(tokenizer):
    with pytest.raises(InputError, match=r"^Give 2 to 5 options \(got 50\)\.$"):
        check_request(tokenizer, "q", [str(i) for i in range(50)], LIMITS)


def test_a_prompt_over_max_prompt_tokens_is_refused_naming_its_token_count(tokenizer):
    limits = RequestLimits(max_prompt_tokens=64)
    with pytest.raises(InputError, match=r"a prompt of \d+ tokens; at most 64: shorten them"):
        check_request(tokenizer, "w" * 200, ["a", "b"], limits)


def test_a_video_whose_frames_are_over_max_video_pixels_is_refused_naming_its_frame_size(tmp_path):
    video = write_solid_video(tmp_path / "huge.mp4", 4200, 2200)  # 9,240,000 pixels a frame
    with pytest.raises(InputError, match=r"^The video's frames are 4,200 x 2,200 pixels; at most 8,847,360 "
                                         r"pixels a frame: scale it down\.$"):
        check_video(str(video), LIMITS)


def test_a_video_within_max_video_pixels_and_no_video_pass(tmp_path):
    check_video(str(write_solid_video(tmp_path / "uhd.mp4", 4096, 2160)), LIMITS)  # exactly the bound
    for video in (str(PANCAKE), None):
        check_video(video, LIMITS)


def test_a_file_whose_frame_size_cannot_be_read_is_refused_not_left_to_decode_at_any_size(tmp_path):
    (tmp_path / "garbage.mp4").write_bytes(b"not a video")
    for video in (tmp_path / "garbage.mp4", tmp_path / "missing.mp4"):
        with pytest.raises(InputError, match=r"^Could not read the video's frame size: is it a video file"):
            check_video(str(video), LIMITS)


def test_docs_app_md_states_the_limits_the_code_applies():
    page = (REPO_ROOT / "docs" / "app.md").read_text()
    table = {row.split("|")[1].strip(): row.split("|")[2].strip() for row in page.splitlines() if row.startswith("| ")}
    assert table["a video upload"] == f"`--max-upload-mb`, {LIMITS.max_upload_mb} MB"
    assert table["the question"] == f"{LIMITS.max_question_chars:,} characters"
    assert table["each option"] == f"{LIMITS.max_option_chars} characters"
    assert re.match(rf"{LIMITS.max_prompt_tokens} T5 tokens", table["the prompt (template, question, options)"])
    assert table["any other request's body"] == f"{LIMITS.max_body_kb // 1024} MB"
    assert table["a video's frame"].startswith(f"{LIMITS.max_video_pixels:,} pixels (4096 x 2160)")
    assert f"[--max-queue {LIMITS.max_queue}]" in page
