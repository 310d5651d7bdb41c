"""Answer a question about a video: the Python inference API.

    from lavis_vila import inference
    model = inference.load("vila", model_type="tiny")            # or checkpoint="output/.../checkpoint_best.pth"
    answer = inference.answer(model, "video.mp4", "what is being flipped?", ["a pancake", "a coin"])
    answer.text, answer.frame_idx, answer.timestamps, answer.probabilities, answer.latency_ms

The prompt is ``prompts.mc_prompt``'s, as the datasets build it. Bad input raises ``InputError``
with a message for the user: every problem with the question and the options at once, or what
failed in reading the video, naming the file. ``tools.explain``, the web app and the demo all
answer through ``answer``.
"""
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from lavis_vila import saved_model
from lavis_vila.checkpoints import CheckpointError
from lavis_vila.models.build import build_model, build_model_from_checkpoint
from lavis_vila.models.compiled import compile_inference
from lavis_vila.models.host_transfer import to_host
from lavis_vila.models.stage_timing import LLM, PROMPTER, QFORMER, VIT, record_stages
from lavis_vila.processors.video import VideoDecodeError, VideoEvalProcessor
from lavis_vila.prompts import OPTION_LETTERS, mc_prompt

MIN_OPTIONS, MAX_OPTIONS = 2, len(OPTION_LETTERS)
STAGES = (VIT, PROMPTER, QFORMER, LLM)


class InputError(ValueError):
    """Input the model cannot answer; the message is meant for the user."""


@dataclass
class Answer:
    """A model's answer and the frames it answered from."""

    question: str
    options: List[str]
    option: int  # index into the options
    text: str  # the chosen option
    frame_idx: List[int]  # (F,) the frames used, increasing indices into the T decoded candidates
    frame_numbers: List[int]  # (F,) the same frames' numbers in the video
    timestamps: List[float]  # (F,) seconds: frame number / the video's average fps
    probabilities: Optional[List[List[float]]]  # (K, T/K) selection probabilities per segment; None: no prompter
    latency_ms: Dict[str, float]  # ViT, prompter, Q-Former, LLM, and the whole request ("total")
    pixels: torch.Tensor = field(repr=False)  # (T, 3, S, S) uint8: the decoded candidates, for drawing

    def to_json(self) -> dict:
        return {"answer": self.text, "option": self.option, "frame_idx": self.frame_idx,
                "frame_numbers": self.frame_numbers, "timestamps": self.timestamps,
                "probabilities": self.probabilities, "latency_ms": self.latency_ms}


def load(arch: str = "vila", model_type: str = "tiny", checkpoint: Optional[str] = None, device: str = "cpu",
         config_key: str = "checkpoint", compile=False):
    """A registered model in eval mode: ``model_type``'s own weights, or with ``checkpoint`` the model
    a training checkpoint records (with its weights) or a saved-model folder holds. A checkpoint of
    another model than ``arch`` is refused; errors name ``checkpoint`` as ``config_key``. ``compile``
    (``false``, ``default``, ``reduce-overhead``): its inference compiled (``models.compiled``)."""
    from lavis.common.registry import registry

    if checkpoint is None:
        model = build_model(arch, model_type)
    elif saved_model.is_saved_model(checkpoint):
        model = registry.get_model_class(arch).from_pretrained(checkpoint)  # refuses a folder of another model
    else:
        model = build_model_from_checkpoint(checkpoint, config_key)
        if type(model) is not registry.get_model_class(arch):
            raise CheckpointError(f"{config_key}: '{checkpoint}' holds a {type(model).__name__}, not a {arch} model")
    return compile_inference(model.to(device).eval(), compile)


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


@torch.inference_mode()
def answer(model, video: Optional[str], question: Optional[str], options: Sequence[str],
           start: Optional[float] = None, end: Optional[float] = None, num_frames: Optional[int] = None) -> Answer:
    """Answer ``question`` about ``video`` (optionally its [start, end] seconds) with ``model``,
    choosing among ``options`` (2 to 5). ``num_frames``: the frames to decode, by default the T
    candidates of a model that selects (``vila``, ``sevila_baseline``); required for ``vila_uniform``."""
    options = clean_options(options)
    check_inputs(video, question, options)
    question = question.strip()
    num_frames = num_frames or model.num_candidate_frames
    if num_frames is None:
        raise ValueError(f"{type(model).__name__} selects no frames: pass num_frames, the frames to decode")
    processor = VideoEvalProcessor(image_size=model.visual_encoder.image_size, num_frames=num_frames)
    started = time.perf_counter()
    try:
        pixels, indices = processor.decode(video, start, end)  # (T, 3, S, S) uint8, T frame numbers
        frames = processor.normalize(pixels)  # evaluation does not augment
        fps = video_fps(video)
    except VideoDecodeError as error:  # its message starts with the path: show the file's name
        raise InputError(str(error).replace(str(video), Path(video).name)) from None
    with record_stages() as seconds:
        scores = model.answer_scores({"video": frames[None].to(model.query_tokens.device),
                                      "qa_input": [mc_prompt(question, options)], "num_option": [len(options)]})
        # the one host sync: the answer, the frames and the probabilities leave the device together
        selection = () if scores.selection is None else (scores.selection.probabilities[0],)
        option, frame_idx, *probabilities = to_host(scores.scores[0].argmax(-1), scores.frame_idx[0], *selection)
    total = time.perf_counter() - started
    frame_numbers = [indices[i] for i in frame_idx]
    return Answer(
        question=question, options=options, option=option, text=options[option], frame_idx=frame_idx,
        frame_numbers=frame_numbers, timestamps=[number / fps for number in frame_numbers],
        probabilities=segment_probabilities(probabilities, getattr(model, "num_selected_frames", None)),
        latency_ms={**{name: 1e3 * seconds.get(name, 0.0) for name in STAGES}, "total": 1e3 * total},
        pixels=pixels,
    )


def segment_probabilities(selection: list, num_segments: Optional[int]):
    """(K, T/K) the prompter's selection probabilities (``selection``: [] without a prompter, else
    [the T probabilities]) within each segment; None without a prompter."""
    if not selection:
        return None
    probabilities = selection[0]  # (T,)
    segment_len = len(probabilities) // num_segments
    return [probabilities[i : i + segment_len] for i in range(0, len(probabilities), segment_len)]


def read_frames(video: str, frame_numbers: Sequence[int]) -> List["numpy.ndarray"]:
    """The frames ``frame_numbers`` of ``video`` at its own resolution, as (H, W, 3) uint8 arrays."""
    import decord

    frames = decord.VideoReader(video, num_threads=1).get_batch(list(frame_numbers))
    return list(frames.numpy() if torch.is_tensor(frames) else frames.asnumpy())  # LAVIS sets decord's torch bridge
