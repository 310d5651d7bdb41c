"""Video processors ``vila_video_train`` / ``vila_video_eval``: decord decoding to (T, 3, H, W).

The clip [start, end] (seconds; the video's start or end where one is absent) is cut into T
equal segments; a window is read by ``datasets.annotations.clip_window``, as the annotation check
and the release conversion read it: a zero-length one (start == end) gives the frame at that time
T times, a ``NaN`` one the whole video. A window that is reversed, negative or starts past the
video's end is an error.
Training takes one random frame per segment (TSN-style), evaluation the middle frame. A video
with fewer than T frames repeats its last frame. ``frame_rounding`` says how a window in seconds,
its segments and a segment's middle become frame indices (``FRAME_RULES``): ``official`` (the
official code: clip end ``int(end*fps)``, middle ``(lo+hi)//2`` of segment [lo, hi), and a window
of fewer than T frames still cut into T segments, ``linspace(start, end, T+1)``, so its repeated
frames are spread evenly in time) or ``centred`` (clip end ``ceil(end*fps)``, middle
``(lo+hi-1)//2``, the centre of the frames lo..hi-1, and a short window's frames taken once each,
its last one repeated up to T). Frames are decoded straight to
``image_size``² (aspect ratio not kept, as in SeViLA/ViLA), then CLIP-normalised; training adds
one random resized crop (scale 0.5-1.0) shared by all frames of the clip.

Call: ``frames, indices = processor(path, start=None, end=None)``. SeViLA's ``n_frms`` is
``num_frames`` here. ``cache_videos: True`` keeps every video it has read in memory, all its frames
decoded at ``image_size``, and samples later epochs from there: for small datasets such as the
synthetic ``keyframe_qa`` (the frames and the random draws are the same as without it).
"""
import os
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch
from lavis.processors.base_processor import BaseProcessor
from omegaconf import OmegaConf
from torchvision.transforms import InterpolationMode, v2

from lavis_vila.datasets.annotations import WindowError, clip_window
from lavis_vila.registry import register_processor

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class FrameRule:
    """How a clip window and its segments become frame indices (``frame_rounding``)."""

    clip_end: Callable[[float], int]  # the window's end in frames, end*fps -> its last frame (excluded)
    centre_shift: int  # the middle frame of segment [lo, hi) is (lo + hi - centre_shift) // 2
    segments: Callable[[int, int, int], int]  # (T, frames in the window, frames in the video) -> segments cut


FRAME_RULES = {
    # The official load_video: n_frms = min(T, video length), linspace over the window whatever its length.
    "official": FrameRule(clip_end=int, centre_shift=0,
                          segments=lambda num_frames, window, video: min(num_frames, video)),
    "centred": FrameRule(clip_end=lambda frames: int(np.ceil(frames)), centre_shift=1,
                         segments=lambda num_frames, window, video: min(num_frames, window)),
}
FRAME_ROUNDINGS = tuple(FRAME_RULES)


class VideoDecodeError(RuntimeError):
    """A video could not be read; the message names the file and what failed."""


def segment_frame_indices(
    num_video_frames: int,
    num_frames: int,
    first: int = 0,
    last: Optional[int] = None,
    random: bool = False,
    rng: Optional[np.random.Generator] = None,
    rounding: str = "official",
) -> List[int]:
    """One frame index per segment of [first, last): the middle one (``rounding``: ``official``
    ``(lo+hi)//2``, ``centred`` ``(lo+hi-1)//2``), or a random one.

    A video of fewer than ``num_frames`` frames has one segment per frame, its last frame repeated
    up to ``num_frames``. A shorter window in a longer video: ``official`` still cuts it into
    ``num_frames`` segments (frames repeat where they fall, spread evenly in time), ``centred``
    takes each of its frames once and repeats the last.
    """
    rule = FRAME_RULES[rounding]
    last = num_video_frames if last is None else last
    first, last = max(0, min(first, num_video_frames - 1)), max(1, min(last, num_video_frames))
    if last <= first:
        last = first + 1
    segments = rule.segments(num_frames, last - first, num_video_frames)
    bounds = np.linspace(first, last, segments + 1)
    starts, ends = bounds[:-1].astype(int), np.maximum(bounds[1:].astype(int), bounds[:-1].astype(int) + 1)
    if random:
        # Seeded from torch's RNG, which DataLoader seeds per worker: runs are repeatable.
        rng = rng or np.random.default_rng(int(torch.randint(2**31, (1,))))
        indices = [int(rng.integers(s, e)) for s, e in zip(starts, ends)]
    else:
        indices = [int((s + e - rule.centre_shift) // 2) for s, e in zip(starts, ends)]
    return indices + [indices[-1]] * (num_frames - segments)


class DecodedVideo:
    """Every frame of a video, decoded, behind the part of decord's ``VideoReader`` that
    ``VideoProcessor`` uses."""

    def __init__(self, frames: torch.Tensor, fps: float):
        self.frames, self.fps = frames, fps  # (N, S, S, 3) uint8

    def __len__(self) -> int:
        return len(self.frames)

    def get_avg_fps(self) -> float:
        return self.fps

    def get_batch(self, indices: List[int]) -> torch.Tensor:
        return self.frames[indices]


class VideoProcessor(BaseProcessor):
    """Decode, sample and normalise; subclasses choose the sampling and augmentation."""

    random_sampling = False

    def __init__(self, image_size: int = 224, num_frames: int = 32, mean=CLIP_MEAN, std=CLIP_STD,
                 frame_rounding: str = "official", cache_videos: bool = False):
        super().__init__()
        if frame_rounding not in FRAME_ROUNDINGS:
            raise ValueError(f"frame_rounding must be one of {FRAME_ROUNDINGS}, got {frame_rounding!r}")
        self.image_size = image_size
        self.num_frames = num_frames
        self.frame_rounding = frame_rounding
        self.cached_videos = {} if cache_videos else None
        # Normalisation on 0-255 pixels in one fused pass: (x - 255*mean) / (255*std).
        self.pixel_mean = torch.tensor(mean).view(1, 3, 1, 1) * 255.0
        self.pixel_std = torch.tensor(std).view(1, 3, 1, 1) * 255.0

    def open(self, path: str):
        """A decord ``VideoReader`` of ``path`` at ``image_size``, or its ``DecodedVideo`` when caching."""
        import decord

        if self.cached_videos is not None and path in self.cached_videos:
            return self.cached_videos[path]
        if not os.path.isfile(path):
            raise VideoDecodeError(f"{path}: video file does not exist")
        try:
            reader = decord.VideoReader(path, width=self.image_size, height=self.image_size, num_threads=1)
        except Exception as error:
            raise VideoDecodeError(f"{path}: cannot open video ({error})") from error
        if self.cached_videos is None:
            return reader
        try:
            frames = reader.get_batch(list(range(len(reader))))  # (N, S, S, 3) uint8
        except Exception as error:
            raise VideoDecodeError(f"{path}: decoding its {len(reader)} frames failed ({error})") from error
        if not isinstance(frames, torch.Tensor):
            frames = torch.from_numpy(frames.asnumpy())
        self.cached_videos[path] = DecodedVideo(frames, reader.get_avg_fps())
        return self.cached_videos[path]

    def decode(self, path: str, start: Optional[float] = None, end: Optional[float] = None) -> Tuple[torch.Tensor, List[int]]:
        """Read the sampled frames of ``path`` as uint8 (T, 3, S, S) plus their indices."""
        reader = self.open(path)
        num_video_frames = len(reader)
        if num_video_frames == 0:
            raise VideoDecodeError(f"{path}: video has no frames")
        first, last = self.frame_window(path, reader, start, end)
        indices = segment_frame_indices(
            num_video_frames, self.num_frames, first, last, self.random_sampling, rounding=self.frame_rounding
        )
        try:
            frames = reader.get_batch(indices)  # (T, S, S, 3) uint8
        except Exception as error:
            raise VideoDecodeError(f"{path}: decoding frames {indices} failed ({error})") from error
        if not isinstance(frames, torch.Tensor):  # LAVIS switches decord's bridge to torch
            frames = torch.from_numpy(frames.asnumpy())
        return frames.permute(0, 3, 1, 2), indices

    def frame_window(self, path: str, reader, start: Optional[float], end: Optional[float]) -> Tuple[int, int]:
        """[first, last) frame indices of the clip [start, end] seconds; either end may be open."""
        num_video_frames = len(reader)
        try:
            start, end = clip_window(start, end)
        except WindowError as error:
            raise VideoDecodeError(f"{path}: invalid clip window start={start!r}, end={end!r} ({error})") from None
        if start is None and end is None:
            return 0, num_video_frames
        fps = reader.get_avg_fps()
        first = int(start * fps) if start is not None else 0
        if first >= num_video_frames:
            raise VideoDecodeError(f"{path}: the clip starts at {start:.2f} s, past the video's end "
                                   f"({num_video_frames / fps:.2f} s)")
        last = FRAME_RULES[self.frame_rounding].clip_end(end * fps) if end is not None else num_video_frames
        return first, max(first + 1, min(last, num_video_frames))  # a zero-length window: its one frame

    def augment(self, frames: torch.Tensor) -> torch.Tensor:
        return frames

    def __call__(self, path: str, start: Optional[float] = None, end: Optional[float] = None):
        """Returns ``(frames, indices)``: normalised float (T, 3, S, S) and the frame indices."""
        frames, indices = self.decode(path, start, end)
        return self.normalize(self.augment(frames)), indices

    def normalize(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (T, 3, S, S) -> normalised float (T, 3, S, S), a new tensor."""
        return frames.float().sub_(self.pixel_mean).div_(self.pixel_std)

    @classmethod
    def from_config(cls, cfg=None):
        cfg = OmegaConf.create() if cfg is None else cfg
        return cls(**cls.config_kwargs(cfg))

    @classmethod
    def config_kwargs(cls, cfg) -> dict:
        return {
            "image_size": cfg.get("image_size", 224),
            "num_frames": cfg.get("num_frames", 32),
            "mean": cfg.get("mean", CLIP_MEAN),
            "std": cfg.get("std", CLIP_STD),
            "frame_rounding": cfg.get("frame_rounding", "official"),
            "cache_videos": cfg.get("cache_videos", False),
        }


@register_processor("vila_video_eval")
class VideoEvalProcessor(VideoProcessor):
    """Middle frame of each segment; no augmentation."""


@register_processor("vila_video_train")
class VideoTrainProcessor(VideoProcessor):
    """Random frame per segment; a random resized crop (scale 0.5-1.0) shared by the clip."""

    random_sampling = True

    def __init__(self, image_size: int = 224, num_frames: int = 32, mean=CLIP_MEAN, std=CLIP_STD,
                 frame_rounding: str = "official", cache_videos: bool = False, min_scale: float = 0.5,
                 max_scale: float = 1.0):
        super().__init__(image_size, num_frames, mean, std, frame_rounding, cache_videos)
        self.crop = v2.RandomResizedCrop(
            image_size, scale=(min_scale, max_scale), interpolation=InterpolationMode.BICUBIC, antialias=True
        )

    def augment(self, frames: torch.Tensor) -> torch.Tensor:
        return self.crop(frames)

    @classmethod
    def config_kwargs(cls, cfg) -> dict:
        return {**super().config_kwargs(cfg), "min_scale": cfg.get("min_scale", 0.5),
                "max_scale": cfg.get("max_scale", 1.0)}
