"""One question about one video, as the web demo asks it: check the inputs, answer with ViLA,
and time the model's stages for this request.

    answer = ask(model, "video.mp4", "what is being flipped?", ["a pancake", "a coin"])
    answer.text, answer.frame_idx, answer.timestamps, answer.latency_ms

Bad input raises ``InputError`` with a message for the user: every problem with the question and
the options at once, or what failed in reading the video, naming the file.
"""
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from lavis_vila.models.stage_timing import LLM, PROMPTER, QFORMER, VIT, record_stages
from lavis_vila.processors import VideoDecodeError
from lavis_vila.prompts import OPTION_LETTERS
from lavis_vila.tools.explain import explain

MIN_OPTIONS, MAX_OPTIONS = 2, len(OPTION_LETTERS)
STAGES = (VIT, PROMPTER, QFORMER, LLM)


class InputError(ValueError):
    """Input the demo cannot answer; the message is meant for the user."""


@dataclass
class Answer:
    """ViLA's answer and the frames it chose (K of the T candidates)."""

    option: int  # index into the options
    text: str  # the chosen option
    frame_idx: List[int]  # (K,) the chosen candidates, increasing, in [0, T)
    frame_numbers: List[int]  # (K,) the same frames' numbers in the video
    timestamps: List[float]  # (K,) seconds: frame number / the video's average fps (decord)
    probabilities: List[List[float]]  # (K, T/K) selection probabilities within each segment
    latency_ms: Dict[str, float]  # ViT, prompter, Q-Former, LLM, and the whole request ("total")
    explanation: dict = field(repr=False)  # explain()'s result, which draw_strip draws

    def to_json(self) -> dict:
        return {"answer": self.text, "option": self.option, "frame_idx": self.frame_idx,
                "frame_numbers": self.frame_numbers, "timestamps": self.timestamps,
                "probabilities": self.probabilities, "latency_ms": self.latency_ms}


def clean_options(options: Sequence[str]) -> List[str]:
    """The options without surrounding blanks; blank ones dropped."""
    return [option.strip() for option in options if option and option.strip()]


def check_inputs(video: Optional[str], question: Optional[str], options: Sequence[str]) -> None:
    """Raise ``InputError`` naming every missing or invalid input."""
    problems = []
    if not video:
        problems.append("Upload a video or pick an example.")
    if not (question or "").strip():
        problems.append("Type a question.")
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        problems.append(f"Give {MIN_OPTIONS} to {MAX_OPTIONS} options (got {len(options)}).")
    if problems:
        raise InputError(" ".join(problems))


def video_fps(video: str) -> float:
    import decord

    return decord.VideoReader(video, num_threads=1).get_avg_fps()


def read_frames(video: str, frame_numbers: Sequence[int]) -> List[np.ndarray]:
    """The frames ``frame_numbers`` of ``video`` at its own resolution, as (H, W, 3) uint8 arrays."""
    import decord

    frames = decord.VideoReader(video, num_threads=1).get_batch(list(frame_numbers))
    frames = frames.numpy() if torch.is_tensor(frames) else frames.asnumpy()  # LAVIS sets decord's torch bridge
    return list(frames)


def ask(model, video: Optional[str], question: Optional[str], options: Sequence[str]) -> Answer:
    """Answer ``question`` about ``video`` with ``model`` (a ``vila``), choosing among ``options``."""
    options = clean_options(options)
    check_inputs(video, question, options)
    start = time.perf_counter()
    try:
        with record_stages() as seconds:
            result = explain(model, video, question.strip(), options)
        fps = video_fps(video)
    except VideoDecodeError as error:  # its message starts with the path: show the file's name
        raise InputError(str(error).replace(video, Path(video).name)) from None
    total = time.perf_counter() - start
    segment_len = model.num_candidate_frames // model.num_selected_frames
    probabilities = result["probabilities"]
    return Answer(
        option=result["answer"],
        text=result["answer_text"],
        frame_idx=result["frame_idx"],
        frame_numbers=result["video_frame_numbers"],
        timestamps=[number / fps for number in result["video_frame_numbers"]],
        probabilities=[probabilities[i : i + segment_len] for i in range(0, len(probabilities), segment_len)],
        latency_ms={**{name: 1e3 * seconds.get(name, 0.0) for name in STAGES}, "total": 1e3 * total},
        explanation=result,
    )
