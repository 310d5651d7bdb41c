"""``keyframe_qa``: a synthetic benchmark whose answers live in a few key frames.

Each clip is T frames of grey noise. For ``event_frames`` consecutive frames (2 by default) at
a random time, one event appears, and the question asks about it:

=========== =========================================== ======================================
type        event                                       options (fixed order)
=========== =========================================== ======================================
Colour      a coloured square at a random place         red, green, blue, yellow
Pattern     a patterned square at a random place        horizontal stripes, vertical stripes,
                                                        checkerboard, solid
Count       1 to 4 white squares in random grid cells   one, two, three, four
=========== =========================================== ======================================

Every event is recognisable from *what* the image patches contain, not from *where* they are:
the tiny random ViT's position embeddings are too weak to carry location (an early version
that asked for a corner stayed at chance even with all 16 frames).

A model that sees all T frames always sees the event. One that sees K uniformly sampled frames
sees it only when a sampled frame falls inside the event (about 2K/T of the time for 2-frame
events) and otherwise can only guess. Answers are balanced over the options in every type.

Two-event variant (``events=2``): each clip holds two events of different question types, both
in the same one of ``segments`` equal parts of the clip (the segments of a T -> K split with K =
``segments``), and the question asks about one of them. Which event is asked about, the first or
the second in time, is balanced, as is the other event's type. Each record adds
``other_frames``, ``other_type`` and ``asked`` (``first`` or ``second``). A prompter that picks
one frame per segment without reading the question can see only one of the two events.

The option order is fixed per type unless ``shuffle_options``: reading shuffled options is a
skill a pretrained LLM brings and the frozen random tiny T5 lacks (design.md §6).

Output, deterministic per seed::

    DIR/train.json, DIR/val.json   SeViLA-format annotations (+ "key_frames")
    DIR/videos/<split>_<n>.mp4     mp4 (MPEG-4 part 2) clips that decord reads
    DIR/meta.json                  the generator's arguments, written last
    DIR/generating.json            only while files are moved in (or after a kill there): not complete
"""
import json
import logging
import os
import shutil
import tempfile
from inspect import signature
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np
from filelock import FileLock
from tqdm import tqdm

from lavis_vila.atomic_files import write_json

QUESTION_TYPES: Dict[str, dict] = {
    "Colour": {
        "question": "what colour is the square that flashes?",
        "options": ["red", "green", "blue", "yellow"],
    },
    "Pattern": {
        "question": "which pattern does the flashing square have?",
        "options": ["horizontal stripes", "vertical stripes", "checkerboard", "solid"],
    },
    "Count": {
        "question": "how many white squares flash?",
        "options": ["one", "two", "three", "four"],
    },
}
COLOURS_BGR = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255)]
SPLITS = {"train": 0, "val": 1}


def draw_event(frame: np.ndarray, qtype: str, answer: int, rng: np.random.Generator) -> None:
    """Paint the event for option ``answer`` onto ``frame`` (H, W, 3 BGR uint8) in place."""
    size = frame.shape[0]
    half, cell = size // 2, size // 4
    if qtype == "Colour":
        y, x = rng.integers(0, size - half + 1, size=2)
        frame[y : y + half, x : x + half] = COLOURS_BGR[answer]
    elif qtype == "Pattern":
        y, x = rng.integers(0, size - half + 1, size=2)
        rows, cols = np.mgrid[0:half, 0:half] // max(1, size // 8)
        pattern = [rows % 2 == 0, cols % 2 == 0, (rows + cols) % 2 == 0, np.ones((half, half), bool)][answer]
        frame[y : y + half, x : x + half] = np.where(pattern, 255, 0)[..., None].astype(np.uint8)
    else:
        for index in rng.choice(16, size=answer + 1, replace=False):
            y, x = (index // 4) * cell, (index % 4) * cell
            frame[y : y + cell, x : x + cell] = 255


def make_clip(path: str, events: List[Tuple[str, int, List[int]]], frames: int, size: int, fps: float,
              rng: np.random.Generator) -> None:
    """Write one clip of grey noise with ``events``: (question type, answer option, key frames) each."""
    painted = {index: (qtype, answer) for qtype, answer, key_frames in events for index in key_frames}
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    for index in range(frames):
        noise = np.clip(rng.normal(128, 40, (size, size, 1)), 0, 255).astype(np.uint8).repeat(3, -1)
        if index in painted:
            frame = np.full_like(noise, 64)  # the event's frames lose their noise: salient as a whole
            draw_event(frame, *painted[index], rng)
        else:
            frame = noise
        writer.write(frame)
    writer.release()


def two_events_in_one_segment(frames: int, event_frames: int, segments: int,
                              rng: np.random.Generator) -> Tuple[List[int], List[int]]:
    """Key frames of two non-overlapping events, in time order, inside one of ``segments`` equal
    parts of the clip."""
    length = frames // segments
    first = int(rng.integers(segments)) * length
    starts = [(a, b) for a in range(length) for b in range(a + event_frames, length - event_frames + 1)]
    a, b = starts[int(rng.integers(len(starts)))]
    return (list(range(first + a, first + a + event_frames)), list(range(first + b, first + b + event_frames)))


def make_split(out_dir: str, split: str, num: int, seed: int, frames: int, size: int,
               event_frames: int, fps: float, shuffle_options: bool, events: int = 1, segments: int = 2) -> List[dict]:
    rng = np.random.default_rng([seed, SPLITS[split]])
    types = list(QUESTION_TYPES)
    # Balanced answers: within each type, option indices cycle, then are shuffled.
    per_type = {t: rng.permutation([i % 4 for i in range(sum(1 for n in range(num) if types[n % 3] == t))]).tolist()
                for t in types}
    records = []
    for n in tqdm(range(num), desc=f"keyframe_qa {split}", unit="clip", mininterval=2):
        qtype = types[n % len(types)]
        answer_option = per_type[qtype].pop()
        spec = QUESTION_TYPES[qtype]
        order = rng.permutation(4).tolist() if shuffle_options else list(range(4))
        video = f"{split}_{n:05d}"
        if events == 1:
            start = int(rng.integers(0, frames - event_frames + 1))
            key_frames = list(range(start, start + event_frames))
            clip_events, extra = [(qtype, answer_option, key_frames)], {}
        else:
            # The other event's type is one of the two others and the asked event comes first or
            # second in time, each balanced in turn.
            other_type = types[(n + 1 + (n // 3) % 2) % 3]
            earlier, later = two_events_in_one_segment(frames, event_frames, segments, rng)
            asked_first = (n // 6) % 2 == 0
            key_frames, other_frames = (earlier, later) if asked_first else (later, earlier)
            clip_events = [(qtype, answer_option, key_frames), (other_type, int(rng.integers(4)), other_frames)]
            extra = {"other_frames": other_frames, "other_type": other_type,
                     "asked": "first" if asked_first else "second"}
        make_clip(os.path.join(out_dir, "videos", video + ".mp4"), clip_events, frames, size, fps, rng)
        records.append({
            "video": video,
            "qid": f"{qtype}_{split}_{n:05d}",
            "question": spec["question"],
            **{f"a{i}": spec["options"][o] for i, o in enumerate(order)},
            "answer": order.index(answer_option),
            "num_option": 4,
            "key_frames": key_frames,
            **extra,
        })
    return records


def event_frame_seen(predictions: List[dict], data_dir: str, candidate_frames: int) -> Dict[str, bool]:
    """Per qid: whether the ``frame_idx`` of a prediction (indices into the ``candidate_frames``
    that the evaluation processor samples from each clip) include one of the clip's key frames."""
    from lavis_vila.processors.video import segment_frame_indices  # imports LAVIS, which generating needs not

    clip_frames = json.loads(Path(data_dir, "meta.json").read_text())["frames"]
    candidate_to_clip = segment_frame_indices(clip_frames, candidate_frames)
    key_frames = {r["qid"]: set(r["key_frames"]) for r in json.loads(Path(data_dir, "val.json").read_text())}
    return {p["qid"]: bool(key_frames[p["qid"]] & {candidate_to_clip[i] for i in p["frame_idx"]}) for p in predictions}


def straddles_segments(key_frames: List[int], clip_frames: int, num_segments: int) -> bool:
    """Whether an event's key frames fall in more than one of ``num_segments`` equal parts of the clip."""
    return len({frame * num_segments // clip_frames for frame in key_frames}) > 1


class GeneratorError(ValueError):
    pass


META, INCOMPLETE = "meta.json", "generating.json"  # INCOMPLETE: a generation under way, or one that was killed


def generate(out_dir: str, seed: int = 0, num_train: int = 1200, num_val: int = 300, frames: int = 8,
             size: int = 32, event_frames: int = 2, fps: float = 8.0, shuffle_options: bool = False,
             events: int = 1, segments: int = 2, force: bool = False) -> str:
    """Write the benchmark to ``out_dir``: a new or empty folder, or one this generator wrote
    (it holds ``meta.json``, or ``generating.json`` where a generation was killed). With ``force``
    any folder; only the files written here are replaced.

    The files are built in a temporary sibling, then moved in under ``generating.json``, which
    goes only once ``meta.json`` is in place: a kill at any moment leaves a folder that no reader
    trusts (``is_generated``) and that the next ``generate`` or ``ensure_generated`` writes again.
    ``events=2``: the two-event variant; both events lie in one of ``segments`` equal parts of
    the clip (the segments of a T -> K split with K = ``segments``)."""
    if not 1 <= event_frames < frames:
        raise ValueError(f"event_frames ({event_frames}) must be between 1 and frames - 1 ({frames - 1})")
    if num_train < 0 or num_val < 0 or num_train + num_val == 0:
        raise ValueError(f"num_train ({num_train}) and num_val ({num_val}) must be 0 or more, and not both 0")
    if events not in (1, 2):
        raise ValueError(f"events must be 1 or 2, got {events}")
    if events == 2 and (frames % segments or 2 * event_frames > frames // segments):
        raise ValueError(f"two events of {event_frames} frame(s) must fit in one of {segments} equal segments of "
                         f"{frames} frames")
    out_dir = os.path.abspath(out_dir)
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not is_ours(out_dir) and not force:
        raise GeneratorError(
            f"{out_dir} holds files that keyframe_qa did not write (it has no meta.json); choose a new or empty "
            f"folder, or pass --force to overwrite only the files the generator writes")
    args = dict(seed=seed, num_train=num_train, num_val=num_val, frames=frames, size=size,
                event_frames=event_frames, fps=fps, shuffle_options=shuffle_options)
    if events == 2:
        args.update(events=events, segments=segments)
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=os.path.basename(out_dir) + ".partial-", dir=os.path.dirname(out_dir))
    os.makedirs(os.path.join(tmp_dir, "videos"))
    for split, num in (("train", num_train), ("val", num_val)):
        records = make_split(tmp_dir, split, num, seed, frames, size, event_frames, fps, shuffle_options, events,
                             segments)
        write_json(os.path.join(tmp_dir, f"{split}.json"), records, indent=1)
    write_json(os.path.join(tmp_dir, META), args, indent=2)
    move_in(tmp_dir, out_dir, args)
    return out_dir


def move_in(tmp_dir: str, out_dir: str, args: dict) -> None:
    """Move the generated files from ``tmp_dir`` into ``out_dir``, under ``INCOMPLETE`` until
    ``meta.json`` is in place."""
    os.makedirs(os.path.join(out_dir, "videos"), exist_ok=True)
    write_json(os.path.join(out_dir, INCOMPLETE), args, indent=2)  # first: from here the folder is not trusted
    if os.path.exists(os.path.join(out_dir, META)):
        os.remove(os.path.join(out_dir, META))
    for name in sorted(os.listdir(os.path.join(tmp_dir, "videos"))):
        os.replace(os.path.join(tmp_dir, "videos", name), os.path.join(out_dir, "videos", name))
    for name in ("train.json", "val.json", META):
        os.replace(os.path.join(tmp_dir, name), os.path.join(out_dir, name))
    os.remove(os.path.join(out_dir, INCOMPLETE))  # last: the folder is complete
    shutil.rmtree(tmp_dir)


def is_generated(out_dir: str) -> bool:
    """A complete keyframe_qa folder: ``meta.json``, and no generation left unfinished."""
    return os.path.isfile(os.path.join(out_dir, META)) and not os.path.exists(os.path.join(out_dir, INCOMPLETE))


def is_ours(out_dir: str) -> bool:
    """A folder this generator wrote, completely or not."""
    return any(os.path.isfile(os.path.join(out_dir, name)) for name in (META, INCOMPLETE))


def differing_options(out_dir: str, requested: dict) -> List[str]:
    """The ``requested`` generator options that ``out_dir``'s ``meta.json`` records otherwise
    (options it does not record are ``generate``'s defaults)."""
    defaults = {name: p.default for name, p in signature(generate).parameters.items() if p.default is not p.empty}
    recorded = {**defaults, **json.loads(Path(out_dir, META).read_text())}
    return [f"{name}: {recorded.get(name)!r} in meta.json, {value!r} asked" for name, value in sorted(requested.items())
            if recorded.get(name) != value]


def ensure_generated(out_dir: str, **generator_args) -> str:
    """Generate on first use, like torchvision's ``download=True``, into a new or empty folder only
    (or one whose generation was killed: it is written again); concurrent ranks wait on a lock. A
    generated folder is used as it is, unless it was generated with other ``generator_args`` than
    those given: then a ``GeneratorError`` names them (nothing is regenerated over data in use)."""
    out_dir = os.path.abspath(out_dir)
    if not is_generated(out_dir):
        if os.path.isdir(out_dir) and os.listdir(out_dir) and not is_ours(out_dir):
            raise GeneratorError(
                f"keyframe_qa data_dir {out_dir} holds files but no meta.json, so it is not a generated keyframe_qa "
                f"folder and nothing in it is touched; set datasets.keyframe_qa.data_dir to a new or empty folder "
                f"(the benchmark is generated there) or to a generated one")
        os.makedirs(os.path.dirname(out_dir), exist_ok=True)
        with FileLock(out_dir + ".lock"):
            if not is_generated(out_dir):
                if is_ours(out_dir):
                    logging.warning("keyframe_qa data_dir %s: an earlier generation did not finish (%s is there); "
                                    "generating it again", out_dir, INCOMPLETE)
                generate(out_dir, **generator_args)
    differing = differing_options(out_dir, generator_args)
    if differing:
        raise GeneratorError(
            f"keyframe_qa data_dir {out_dir} was generated with other options than asked ({'; '.join(differing)}); "
            f"set datasets.keyframe_qa.data_dir to a new folder for these options, or give the folder's own")
    return out_dir
